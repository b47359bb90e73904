#!/usr/bin/env bash
# Compiles internal/torch/shim.cpp (syntax and types, no link) against the
# libtorch 2.x headers Debian ships, so that a change to the shim that only
# libtorch 2.x rejects fails the tests on a machine that has only 1.13.
#
#   scripts/check-shim-headers.sh            # Debian trixie's and sid's libtorch-dev
#   scripts/check-shim-headers.sh ROOT...    # header trees: ROOT/include/ATen/...
#
# ROOT may be pytorch.org's libtorch, pip torch's package directory or an
# extracted libtorch-dev .deb (D/usr). Without arguments the packages are
# fetched with a private APT configuration under $L2G_SHIM_CACHE (default
# ~/.cache/l2g/shim-headers): the system's sources and lists are untouched
# and no package is installed. When they cannot be fetched the check is
# skipped with a warning (L2G_SHIM_HEADERS_REQUIRED=1 makes that an error).
# Debian's libtorch-dev carries the generated headers (ATen/ops/*.h,
# TensorBody.h), so no PyTorch build is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${L2G_SHIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/l2g/shim-headers}
roots=("$@")

# unavailable: the headers cannot be fetched. That is the network's fault,
# not the shim's, so it skips loudly unless L2G_SHIM_HEADERS_REQUIRED=1.
unavailable() {
  echo "check-shim-headers: $1" >&2
  if [ "${L2G_SHIM_HEADERS_REQUIRED:-0}" = 1 ]; then exit 1; fi
  echo "check-shim-headers: SKIPPED: the shim was not checked against libtorch 2.x" >&2
  exit 0
}

if [ ${#roots[@]} -eq 0 ]; then
  kr=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$kr" ] || unavailable "$kr missing (apt-get install debian-archive-keyring)"
  a=$cache/apt
  mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/preferences.d" "$cache/debs"
  # The machine's own Debian mirror when it names one (CI may reach only that).
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  printf 'deb [signed-by=%s] %s %s main\n' "$kr" "$mirror" trixie "$kr" "$mirror" sid >"$a/sources.list"
  cat >"$a/apt.conf" <<EOF
Dir::Etc::sourcelist "$a/sources.list";
Dir::Etc::sourceparts "/nonexistent";
Dir::Etc::preferencesparts "$a/preferences.d";
Dir::State::Lists "$a/lists";
Dir::Cache "$a";
APT::Architecture "amd64";
APT::Sandbox::User "$(id -un)";
EOF
  export APT_CONFIG=$a/apt.conf
  apt-get -qq update || unavailable "apt-get update (trixie, sid from $mirror) failed"
  vers=$(apt-cache madison libtorch-dev | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep '^2\.' | sort -u || true)
  [ -n "$vers" ] || unavailable "no libtorch-dev 2.x in trixie or sid"
  for v in $vers; do
    d=$cache/libtorch-${v%%+*}
    if [ ! -d "$d/usr/include/ATen" ]; then
      (cd "$cache/debs" && apt-get -qq download "libtorch-dev=$v") || unavailable "download of libtorch-dev $v failed"
      rm -rf "$d" && dpkg -x "$cache/debs/libtorch-dev_${v/:/%3a}_amd64.deb" "$d"
    fi
    roots+=("$d/usr")
  done
  unset APT_CONFIG
fi

fail=0
for root in "${roots[@]}"; do
  inc=$root/include
  vh=$inc/torch/headeronly/version.h
  [ -f "$vh" ] || vh=$inc/torch/csrc/api/include/torch/version.h
  ver=$(awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH) /{printf "%s%s", s, $3; s="."}' "$vh")
  # The same flags as internal/torch/cgo_*.go and scripts/build-shim.sh.
  if out=$(c++ -std=c++20 -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=1 -I"$inc" \
    -I"$inc/torch/csrc/api/include" internal/torch/shim.cpp 2>&1); then
    echo "check-shim-headers: libtorch $ver ($root): ok"
  else
    echo "check-shim-headers: libtorch $ver ($root): FAILED" >&2
    echo "$out" | grep -E 'error' | head -20 >&2
    fail=1
  fi
done
exit $fail
