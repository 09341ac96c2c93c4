/*
 * addon_args.h: the argument and result machinery of native/addon.c's kernel table (GG_KERNELS), included there once
 * after the argument readers gg_get_array, gg_get_int and gg_get_double: each kind's C type and reader, by arity the
 * declarations a0..a(n-1) of a wrapper's arguments and their list, and each result kind's return (GG_RET_*).
 */
#ifndef GG_ADDON_ARGS_H
#define GG_ADDON_ARGS_H

/* Argument kinds: FA float array, IA int32 array, IX index (gg_i), IN small int, DB double. (Not single letters:
 * cblas.h pulls in complex.h, which defines I.) */
#define GG_T_FA float *
#define GG_T_IA int32_t *
#define GG_T_DA double *
#define GG_T_IX gg_i
#define GG_T_IN int
#define GG_T_DB double
#define GG_GET_FA(v) (float *)gg_get_array(env, v, &bad)
#define GG_GET_IA(v) (int32_t *)gg_get_array(env, v, &bad)
#define GG_GET_DA(v) (double *)gg_get_array(env, v, &bad)
#define GG_GET_IX(v) (gg_i) gg_get_int(env, v, &bad)
#define GG_GET_IN(v) (int)gg_get_int(env, v, &bad)
#define GG_GET_DB(v) gg_get_double(env, v, &bad)
#define GG_ARG(T, i) GG_T_##T a##i = GG_GET_##T(argv[i]);

/* Declarations a0..a(n-1) and the argument list, by arity. */
#define GG_D0()
#define GG_D1(t0) GG_ARG(t0, 0)
#define GG_D2(t0, t1) GG_D1(t0) GG_ARG(t1, 1)
#define GG_D3(t0, t1, t2) GG_D2(t0, t1) GG_ARG(t2, 2)
#define GG_D4(t0, t1, t2, t3) GG_D3(t0, t1, t2) GG_ARG(t3, 3)
#define GG_D5(t0, t1, t2, t3, t4) GG_D4(t0, t1, t2, t3) GG_ARG(t4, 4)
#define GG_D6(t0, t1, t2, t3, t4, t5) GG_D5(t0, t1, t2, t3, t4) GG_ARG(t5, 5)
#define GG_D7(t0, t1, t2, t3, t4, t5, t6) GG_D6(t0, t1, t2, t3, t4, t5) GG_ARG(t6, 6)
#define GG_D8(t0, t1, t2, t3, t4, t5, t6, t7) GG_D7(t0, t1, t2, t3, t4, t5, t6) GG_ARG(t7, 7)
#define GG_D9(t0, t1, t2, t3, t4, t5, t6, t7, t8) GG_D8(t0, t1, t2, t3, t4, t5, t6, t7) GG_ARG(t8, 8)
#define GG_D10(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9) GG_D9(t0, t1, t2, t3, t4, t5, t6, t7, t8) GG_ARG(t9, 9)
#define GG_D11(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10) \
  GG_D10(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9) GG_ARG(t10, 10)
#define GG_D12(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11) \
  GG_D11(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10) GG_ARG(t11, 11)
#define GG_D13(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12) \
  GG_D12(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11) GG_ARG(t12, 12)
#define GG_D14(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13) \
  GG_D13(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12) GG_ARG(t13, 13)
#define GG_D15(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14) \
  GG_D12(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11) GG_ARG(t12, 12) GG_ARG(t13, 13) GG_ARG(t14, 14)
#define GG_D16(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15) \
  GG_D9(t0, t1, t2, t3, t4, t5, t6, t7, t8)                                         \
  GG_ARG(t9, 9) GG_ARG(t10, 10) GG_ARG(t11, 11) GG_ARG(t12, 12) GG_ARG(t13, 13) GG_ARG(t14, 14) GG_ARG(t15, 15)
#define GG_L0
#define GG_L1 a0
#define GG_L2 a0, a1
#define GG_L3 GG_L2, a2
#define GG_L4 GG_L3, a3
#define GG_L5 GG_L4, a4
#define GG_L6 GG_L5, a5
#define GG_L7 GG_L6, a6
#define GG_L8 GG_L7, a7
#define GG_L9 GG_L8, a8
#define GG_L10 GG_L9, a9
#define GG_L11 GG_L10, a10
#define GG_L12 GG_L11, a11
#define GG_L13 GG_L12, a12
#define GG_L14 GG_L13, a13
#define GG_L15 GG_L12, a12, a13, a14
#define GG_D17(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16) \
  GG_D16(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15) GG_ARG(t16, 16)
#define GG_L16 GG_L9, a9, a10, a11, a12, a13, a14, a15
#define GG_D19(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18) \
  GG_D17(t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16) GG_ARG(t17, 17) GG_ARG(t18, 18)
#define GG_L17 GG_L16, a16
#define GG_L19 GG_L17, a17, a18

/* Whether a wrapper got fewer arguments than its arity. */
static int gg_too_few(size_t argc, int n) { return argc < (size_t)n; }

/* A wrapper's result: nothing, a number or a string. */
static napi_value gg_string(napi_env env, const char *s) {
  napi_value r = NULL;
  napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value gg_number(napi_env env, double v) {
  napi_value r = NULL;
  napi_create_double(env, v, &r);
  return r;
}
#define GG_RET_void(call) \
  call;                   \
  return NULL
#define GG_RET_num(call) return gg_number(env, (double)(call))
#define GG_RET_str(call) return gg_string(env, (call))

#endif
