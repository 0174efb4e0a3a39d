#!/usr/bin/env bash
# Rebuilds cpu.wasm from cpu.c (the .wasm is checked in so `make bench` needs
# no wasm toolchain). Needs Debian's clang + lld (wasm-ld).
set -euo pipefail
cd "$(dirname "$0")"
clang --target=wasm32 -O2 -nostdlib -ffreestanding \
    -Wl,--no-entry -Wl,--export-dynamic -Wl,-z,stack-size=1048576 \
    -o cpu.wasm cpu.c
echo "wrote $(pwd)/cpu.wasm ($(stat -c %s cpu.wasm) bytes)"
