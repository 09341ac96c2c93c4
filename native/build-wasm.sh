#!/usr/bin/env bash
# Builds wasm/gradguard.wasm from native/kernels.c + native/wasm_sgemm.c with clang's wasm32 target (no libc).
#
#   bash native/build-wasm.sh [output]      (default: wasm/gradguard.wasm; scripts/check-wasm.sh passes a temp file)
#
# The output must be byte-for-byte reproducible with a given clang, since the .wasm is committed and CI checks it:
# sources are passed as relative paths from the repository root, there is no debug info (-g would embed the build
# directory), and the linker strips the custom sections (names, producers), so nothing depends on where or when it
# was built.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-wasm/gradguard.wasm}"
CLANG="${CLANG:-clang}"
command -v "$CLANG" >/dev/null || { echo "build-wasm: '$CLANG' not found (install clang and lld)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

# -msimd128: SIMD128, in Node since 16.4. -mbulk-memory: memcpy/memmove/memset become memory.copy/memory.fill
#   instead of calls to a libc we do not have.
# -ffp-contract=off: no fused multiply-add, so results round as the JS reference does.
# -fno-math-errno: sqrt is the instruction. -ffreestanding: no hosted-libc assumptions.
# Linker: no entry point; export the GG_API functions (the rest is hidden), __heap_base (the JS side allocates tensors
#   above it) and the memory; stack first, so that an overflow traps instead of overwriting data; memory may grow
#   to 4 GiB.
"$CLANG" --target=wasm32 -msimd128 -mbulk-memory -O3 -ffreestanding -nostdlib -fvisibility=hidden \
  -ffp-contract=off -fno-math-errno -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--export=__heap_base -Wl,--stack-first -Wl,-z,stack-size=65536 \
  -Wl,--max-memory=4294967296 -Wl,--strip-all \
  -o "$out" native/kernels.c native/wasm_sgemm.c
