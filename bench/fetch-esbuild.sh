#!/usr/bin/env bash
# The benchmark's set-up for its esbuild rows (issue 15): fetches
# `esbuild.wasm` from the npm package `esbuild-wasm` (pinned version, checked
# against a pinned SHA-256) into bench/target/esbuild/. Not checked in: it is
# 13.9 MB and its license is the package's. Idempotent; prints the path.
set -euo pipefail
VERSION=0.28.2
SHA256=b1831a5c0f6cf688034fb94d0419812f165ea316a3380d3fc00a151e562d2eaf
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/target/esbuild"
out="$dir/esbuild.wasm"
if [ -f "$out" ] && echo "$SHA256  $out" | sha256sum -c --quiet - 2>/dev/null; then
  echo "$out"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-esbuild: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "esbuild-wasm@$VERSION" >/dev/null)
tar -xzf "$tmp/esbuild-wasm-$VERSION.tgz" -C "$tmp" package/esbuild.wasm
echo "$SHA256  $tmp/package/esbuild.wasm" | sha256sum -c --quiet - \
  || { echo "fetch-esbuild: esbuild.wasm does not have the pinned SHA-256" >&2; exit 1; }
mv "$tmp/package/esbuild.wasm" "$out"
echo "$out"
