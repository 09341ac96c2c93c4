#!/usr/bin/env bash
# Checks that the committed wasm/gradguard.wasm is what native/build-wasm.sh builds from the committed C sources.
# CI runs it where clang and lld are installed: a C change committed without `npm run build:wasm` fails here, as does
# a module that is not reproducible. (The bytes depend on the clang version: CI and developers use Debian's clang 14.)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v "${CLANG:-clang}" >/dev/null || { echo "check-wasm: clang not found; skipping (install clang and lld)" >&2; exit 0; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bash native/build-wasm.sh "$tmp/gradguard.wasm"
if ! cmp -s "$tmp/gradguard.wasm" wasm/gradguard.wasm; then
  echo "check-wasm: wasm/gradguard.wasm is stale or not reproducible: rebuilding native/*.c gives different bytes." >&2
  echo "  committed: $(wc -c < wasm/gradguard.wasm) bytes, sha256 $(sha256sum wasm/gradguard.wasm | cut -c1-16)" >&2
  echo "  rebuilt:   $(wc -c < "$tmp/gradguard.wasm") bytes, sha256 $(sha256sum "$tmp/gradguard.wasm" | cut -c1-16)" >&2
  echo "  with $("${CLANG:-clang}" --version | head -1)" >&2
  echo "Run 'npm run build:wasm' and commit wasm/gradguard.wasm." >&2
  exit 1
fi
echo "check-wasm: wasm/gradguard.wasm matches native/*.c ($(wc -c < wasm/gradguard.wasm) bytes)"
