#!/usr/bin/env bash
# Installs what building and testing l2g needs on Debian 12, only when it is
# missing: libtorch-dev (Debian's libtorch 1.13.1), OpenBLAS (Debian's
# libtorch otherwise runs on netlib's reference BLAS, ~6x slower), and with
# --test the npm packages of the Parquet interop test. Needs root or sudo
# for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_bench=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

if ! command -v go >/dev/null 2>&1; then
  echo "setup.sh: Go is not installed. Install Go 1.26 (https://go.dev/dl/) and put it on PATH." >&2
  exit 1
fi

pkgs=()
if [ -z "${LIBTORCH:-}" ]; then
  dpkg -s libtorch-dev >/dev/null 2>&1 || pkgs+=(libtorch-dev)
fi
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || pkgs+=(libopenblas0-pthread)
command -v c++ >/dev/null 2>&1 || pkgs+=(g++)
if [ "$want_bench" = 1 ]; then
  dpkg -s python3-torch >/dev/null 2>&1 || pkgs+=(python3-torch)
fi
if [ "$want_test" = 1 ]; then
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi

if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "setup.sh: missing Debian packages: ${pkgs[*]}" >&2
    echo "setup.sh: run as root, or: sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installing ${pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if [ "$want_test" = 1 ] && [ -f test/interop/package.json ] && [ ! -d test/interop/node_modules ]; then
  echo "setup.sh: installing the interop test's npm packages"
  (cd test/interop && if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi)
fi
