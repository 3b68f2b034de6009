#!/usr/bin/env bash
# Configures and builds one build type (release | debug | sanitize) into
# build/<type>. Re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
type=${1:-release}
case "$type" in
  release) cmake_type=Release ;;
  debug) cmake_type=Debug ;;
  sanitize) cmake_type=Sanitize ;;
  *) echo "build.sh: unknown build type '$type' (release, debug or sanitize)" >&2; exit 2 ;;
esac
# clang-14: GCC 12 destroys lambda temporaries inside co_await operands twice
# (see CMakeLists.txt), which this code base cannot live with.
if [ ! -f "build/$type/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "build/$type" -G Ninja -DCMAKE_BUILD_TYPE="$cmake_type" >/dev/null
fi
cmake --build "build/$type" -j"$(nproc)"
