#!/usr/bin/env bash
# Builds the libtorch shim alone as a shared library, for hosts that have a
# PyTorch/libtorch and a C++ compiler but no Go (typical GPU machines):
#
#   scripts/build-shim.sh [LIBTORCH_DIR] [OUT_DIR]
#
# LIBTORCH_DIR is a libtorch tree (include/ + lib/); by default the installed
# Python torch package (torch/include + torch/lib), else Debian's libtorch.
# An l2g binary built elsewhere with `make build-sharedlib` then runs against
# OUT_DIR/libl2gtorch.so: the C ABI in internal/torch/shim.h is the contract.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lt=${1:-${LIBTORCH:-}}
out=${2:-$here/build}
py=${PYTHON:-python3}
abi=${TORCH_CXX11_ABI:-}
if [ -z "$lt" ] && $py -c 'import torch' 2>/dev/null; then
  lt=$($py -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  abi=${abi:-$($py -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')}
fi
mkdir -p "$out"
flags=(-std=c++20 -O2 -fPIC -shared -w)
if [ -n "$lt" ]; then
  flags+=(-D_GLIBCXX_USE_CXX11_ABI="${abi:-1}" -I"$lt/include" -I"$lt/include/torch/csrc/api/include"
          -L"$lt/lib" -Wl,-rpath,"$lt/lib")
  if [ -e "$lt/lib/libtorch_cuda.so" ]; then
    # CUDA kernels register from static initialisers: keep the library even
    # though no symbol of it is referenced.
    flags+=(-Wl,--no-as-needed -ltorch_cuda -Wl,--as-needed)
  fi
else
  flags+=(-D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include/torch/csrc/api/include)
fi
echo "build-shim: libtorch ${lt:-/usr (Debian)} -> $out/libl2gtorch.so"
c++ "${flags[@]}" "$here/internal/torch/shim.cpp" -o "$out/libl2gtorch.so" -ltorch -ltorch_cpu -lc10
