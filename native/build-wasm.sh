#!/usr/bin/env bash
# Builds the two wasm modules from native/kernels/*.c (the kernel families) + native/wasm_sgemm.c with clang's wasm32
# target (no libc):
#   wasm/gradguard.wasm     one thread, its own memory: runs anywhere WebAssembly SIMD does (Node, every browser);
#   wasm/gradguard-mt.wasm  the same kernels with a multi-threaded sgemm (GG_WASM_THREADS): imports a shared memory
#                           and exports its stack pointer, so that src/backend/wasm-threads.ts can run one instance per
#                           worker thread on that memory, each with its own stack.
#
#   bash native/build-wasm.sh [outdir]      (default: wasm/; scripts/check-wasm.sh passes a temp directory)
#
# Compiler: Debian 12's clang-19 (apt-get install clang-19 lld-19). Relaxed SIMD needs clang 16 or later; clang 19
# also folds constant offsets into wasm loads (`v128.load32_splat offset=12` where clang 16 emits an i32.add per
# load), which V8 then turns into fewer instructions in the sgemm's inner loop: the wasm MLP step is ~7% faster.
#
# The output must be byte-for-byte reproducible with a given clang, since the .wasm is committed and CI checks it:
# sources are passed as relative paths from the repository root, there is no debug info (-g would embed the build
# directory), and the linker strips the custom sections (names, producers), so nothing depends on where or when it
# was built.
set -euo pipefail
cd "$(dirname "$0")/.."
outdir="${1:-wasm}"
CLANG="${CLANG:-clang-19}"
command -v "$CLANG" >/dev/null || { echo "build-wasm: '$CLANG' not found (apt-get install clang-19 lld-19)" >&2; exit 1; }
mkdir -p "$outdir"
# The kernel families, in a fixed order (the order of the functions in the module, so of its bytes).
kernels=(native/kernels/elementwise.c native/kernels/reduce.c native/kernels/layout.c native/kernels/loss.c
  native/kernels/conv.c native/kernels/conv_direct.c native/kernels/conv_direct3.c native/kernels/conv_whole.c native/kernels/conv_dw.c native/kernels/conv_wino.c native/kernels/conv_wino_dw.c native/kernels/pool.c native/kernels/norm.c native/kernels/optim.c native/kernels/recurrent.c native/kernels/recurrent_seq.c native/kernels/linear.c
  native/kernels/gemm_ref.c)

# -msimd128: SIMD128, in Node since 16.4. -mbulk-memory: memcpy/memmove/memset become memory.copy/memory.fill
#   instead of calls to a libc we do not have.
# -ffp-contract=off: no fused multiply-add, so results round as the JS reference does.
# -fno-math-errno: sqrt is the instruction. -ffreestanding: no hosted-libc assumptions.
# Linker: no entry point; export the GG_API functions (the rest is hidden), __heap_base (the JS side allocates tensors
#   above it) and the memory; stack first, so that an overflow traps instead of overwriting data; memory may grow
#   to 4 GiB.
common=(--target=wasm32 -msimd128 -mbulk-memory -O3 -ffreestanding -nostdlib -fvisibility=hidden
  -ffp-contract=off -fno-math-errno -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--export=__heap_base -Wl,--stack-first -Wl,-z,stack-size=65536
  -Wl,--max-memory=4294967296 -Wl,--strip-all)
"$CLANG" "${common[@]}" -o "$outdir/gradguard.wasm" "${kernels[@]}" native/wasm_sgemm.c

# The threaded module: -matomics for the atomic control words and memory.atomic.notify; --shared-memory with
#   --import-memory, so that every instance uses the memory the JS side creates (its initial size is fixed at 16 MiB
#   here and there: WASM_MT_INITIAL_PAGES in src/backend/wasm.ts); -mmutable-globals to export __stack_pointer, which
#   each worker sets to a stack of its own; -mrelaxed-simd for the sgemm's fused multiply-add (GG_WASM_FMA), which
#   Node 22+ runs as is and Node 20 behind --experimental-wasm-relaxed-simd (wasm.ts sets it before compiling).
"$CLANG" "${common[@]}" -matomics -mmutable-globals -mrelaxed-simd -DGG_WASM_THREADS -DGG_WASM_FMA \
  -Wl,--shared-memory -Wl,--import-memory -Wl,--initial-memory=16777216 -Wl,--export=__stack_pointer \
  -o "$outdir/gradguard-mt.wasm" "${kernels[@]}" native/wasm_sgemm.c native/wasm_threads.c
