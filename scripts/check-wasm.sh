#!/usr/bin/env bash
# Checks that the committed wasm/*.wasm are what native/build-wasm.sh builds from the committed C sources.
# CI runs it where clang and lld are installed: a C change committed without `npm run build:wasm` fails here, as does
# a module that is not reproducible. (The bytes depend on the clang version: CI and developers use Debian 12's
# clang-19, which native/build-wasm.sh runs unless CLANG says otherwise.)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v "${CLANG:-clang-19}" >/dev/null || { echo "check-wasm: clang-19 not found; skipping (apt-get install clang-19 lld-19)" >&2; exit 0; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bash native/build-wasm.sh "$tmp"
status=0
for f in gradguard.wasm gradguard-mt.wasm; do
  if ! cmp -s "$tmp/$f" "wasm/$f"; then
    echo "check-wasm: wasm/$f is stale or not reproducible: rebuilding native/*.c gives different bytes." >&2
    if [ -f "wasm/$f" ]; then
      echo "  committed: $(wc -c < "wasm/$f") bytes, sha256 $(sha256sum "wasm/$f" | cut -c1-16)" >&2
    else
      echo "  committed: none" >&2
    fi
    echo "  rebuilt:   $(wc -c < "$tmp/$f") bytes, sha256 $(sha256sum "$tmp/$f" | cut -c1-16)" >&2
    status=1
  else
    echo "check-wasm: wasm/$f matches native/*.c ($(wc -c < "wasm/$f") bytes)"
  fi
done
if [ "$status" != 0 ]; then
  echo "  with $("${CLANG:-clang-19}" --version | head -1)" >&2
  echo "Run 'npm run build:wasm' and commit wasm/*.wasm." >&2
fi
exit "$status"
