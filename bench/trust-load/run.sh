#!/bin/sh
# Load-time figures of docs/trust.md: compiles and signs the benchmark
# modules with the workspace's `wasmc` (WASMC=path to override), then
# measures. Uses target/release/wasmc if built, else target/debug/wasmc (the
# compiler's speed does not enter the figures).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
wasmc=${WASMC:-$root/target/release/wasmc}
[ -x "$wasmc" ] || wasmc=$root/target/debug/wasmc
dir=${TRUST_LOAD_DIR:-$(mktemp -d)}
cd "$here"
cargo build --release --quiet
bin=$here/target/release/wasmc-trust-load
mkdir -p "$dir"
rm -f "$dir/key" "$dir/key.pub"
"$wasmc" keygen -o "$dir/key" >/dev/null
set --
for wat in $("$bin" gen "$dir"); do
    o=${wat%.wat}.o
    "$wasmc" compile "$wat" -o "$o" --sign "$dir/key"
    set -- "$@" "$o"
done
"$bin" measure "$dir/key.pub" "$@"
