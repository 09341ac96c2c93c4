{
  "targets": [
    {
      "target_name": "gradguard",
      "sources": [
        "native/addon.c",
        "native/gemm_x86.c",
        "native/gemm_bench.c",
        "native/pool_x86.c",
        "native/kernels/elementwise.c",
        "native/kernels/reduce.c",
        "native/kernels/layout.c",
        "native/kernels/loss.c",
        "native/kernels/conv.c",
        "native/kernels/conv_direct.c",
        "native/kernels/conv_whole.c",
        "native/kernels/conv_dw.c",
        "native/kernels/conv_direct3.c",
        "native/kernels/conv_wino.c",
        "native/kernels/conv_wino_dw.c",
        "native/kernels/pool.c",
        "native/kernels/norm.c",
        "native/kernels/optim.c",
        "native/kernels/recurrent.c",
        "native/kernels/recurrent_seq.c",
        "native/kernels/linear.c",
        "native/kernels/gemm_ref.c"
      ],
      "include_dirs": ["native", "/usr/include/openblas"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-march=native", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags!": ["-O2"],
      "libraries": ["-lopenblas", "-lpthread"],
      "ldflags": ["-Wl,-z,nodelete"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"]
      }
    }
  ]
}
