#!/usr/bin/env bash
# 1,000,000 printf lines to a file: `wasmc run` (WASI, artifact compiled
# ahead of time) against the same C program built natively. Prints the
# best of N runs of each and their ratio. Needs clang, lld, wasi-libc and
# libclang-rt-dev-wasm32 (as `.ci/run` installs); run from the repository
# root after `make build`: `bash bench/wasi-printf.sh [RUNS]`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
out=target/bench-wasi
mkdir -p "$out"
wasmc=target/release/wasmc
[ -x "$wasmc" ] || cargo build --release -p wasmc-cli --bin wasmc
clang -O2 -o "$out/printf-native" bench/wasi/printf.c
clang --target=wasm32-wasi -O2 -Wl,--strip-all -o "$out/printf.wasm" bench/wasi/printf.c
"$wasmc" compile "$out/printf.wasm" -o "$out/printf.o"

best() { # best wall time in seconds of "$@" > file, over $runs runs
    local b=""
    for _ in $(seq "$runs"); do
        local s e t
        s=$(date +%s%N)
        "$@" > "$out/lines.txt"
        e=$(date +%s%N)
        t=$(( e - s ))
        if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi
    done
    echo "$b"
}
native=$(best "$out/printf-native")
cp "$out/lines.txt" "$out/lines-native.txt"
wasm=$(best "$wasmc" run "$out/printf.o")
cmp "$out/lines.txt" "$out/lines-native.txt"
lines=$(wc -l < "$out/lines.txt")
rm -f "$out/lines.txt" "$out/lines-native.txt"
awk -v n="$native" -v w="$wasm" -v l="$lines" -v r="$runs" 'BEGIN {
    printf "%d lines: native %.3f s, wasmc run %.3f s, ratio %.2fx (best of %d runs)\n",
        l, n / 1e9, w / 1e9, w / n, r }'
