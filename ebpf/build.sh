#!/usr/bin/env bash
# Compiles the probes into ebpf/tapio.bpf.o, the object the recorder embeds.
#   ebpf/build.sh           rebuild the object in place
#   ebpf/build.sh --check   rebuild into a temporary file and fail when it differs (CI)
# Needs clang and libbpf's headers (Debian: apt-get install clang libbpf-dev).
set -euo pipefail
cd "$(dirname "$0")"
out=tapio.bpf.o
if [ "${1:-}" = "--check" ]; then out=$(mktemp --suffix=.o); trap 'rm -f "$out"' EXIT; fi
arch=$(uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
clang -O2 -g -target bpf -D__TARGET_ARCH_"$arch" -I. -I/usr/include/"$(uname -m)"-linux-gnu \
  -fdebug-prefix-map="$PWD"=. -Wall -Werror -c tapio.bpf.c -o "$out"
llvm-strip -g "$out"   # DWARF goes; BTF (needed for CO-RE) stays
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$out" tapio.bpf.o; then
    echo "ebpf/tapio.bpf.o is stale: run ebpf/build.sh and commit the object" >&2
    exit 1
  fi
  echo "ebpf/tapio.bpf.o matches its source ($(clang --version | head -1))"
fi
