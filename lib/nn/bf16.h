/* bf16.h - the bf16 compute precision of lib/nn (issue #19): on CPUs with
 * AVX512_BF16 the GEMMs of the 1x1 convolutions and of the Winograd 3x3
 * convolutions' transform domain take bf16 operands (round to nearest even
 * at the GEMM's input) and accumulate in fp32 (vdpbf16ps: two products per
 * 32-bit lane); GroupNorm, softmax, the Winograd transforms and everything
 * else stay fp32. The precision is a setting of the process (set it before
 * running networks, not while another thread runs one), f32 by default, so
 * the f32 results are bit-identical with or without this file. In bf16 the
 * backward passes (mixed-precision training) take bf16 operands in the same
 * places: the 1x1 convolutions' input and weight gradients, the Winograd
 * input gradient of the 3x3 ones and their F(2x2,3x3) weight gradient, and
 * attention's products (its forward keeps fp32 weights for the backward,
 * whose softmax backward stays fp32) (the F(4x4,3x3) weight gradient, the
 * small-plane direct 3x3 kernels and linear layers stay fp32); the
 * parameters, their gradients and the optimiser stay fp32. */
#ifndef GLAD_NN_BF16_H
#define GLAD_NN_BF16_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GLAD_PREC_F32 = 0, GLAD_PREC_BF16 = 1 } glad_precision;

/* "f32", "bf16", NULL: the names of --precision (cli_parse_choice) */
extern const char *const glad_precision_names[];

/* 1 when this CPU runs the bf16 kernels: AVX-512F (and not GLAD_NO_AVX512),
 * AVX512_BF16 and AVX512BW, and GLAD_NO_BF16 not in the environment */
int glad_bf16_available(void);

/* The process's precision for the forward kernels from now on.
 * GLAD_EUNSUPPORTED (the setting unchanged, glad_error_detail() says why)
 * for bf16 where glad_bf16_available() is 0; GLAD_EINVAL for an unknown value. */
int glad_precision_set(glad_precision p);
glad_precision glad_precision_get(void);

/* A network's bf16 weights, converted once (Winograd-transformed for the
 * 3x3 convolutions): the kernels fill and read the cache in use, keyed by
 * the fp32 weights' address and shape. A model owns one and clears it when
 * its weights may change (glad_unet_weights does); between the use and the
 * clear the fp32 weights must not change. Without a cache in use the
 * kernels convert at every call. One thread at a time. */
typedef struct glad_bf16_cache glad_bf16_cache;
glad_bf16_cache *glad_bf16_cache_new(void);   /* NULL: out of memory */
void glad_bf16_cache_clear(glad_bf16_cache *c);
/* every entry remade (in its memory, no allocation) at its next use: for
 * weights that change every training step */
void glad_bf16_cache_invalidate(glad_bf16_cache *c);
void glad_bf16_cache_free(glad_bf16_cache *c);
/* make c (or NULL: none) the cache in use; returns the previous one */
glad_bf16_cache *glad_bf16_cache_use(glad_bf16_cache *c);

/* The general bf16 GEMM (linear layers, attention products), on a CPU where
 * glad_bf16_available():
 *   C (M,N) = alpha A B (+ C when add), A (M,K) rows lda apart, B (K,N) rows
 *   ldb apart, or with bt B^T of a (N,K) matrix rows ldb apart,
 * operands rounded to bf16 (nearest even), fp32 sums over K in order, so a
 * row of C does not depend on M or on the thread count. Bp, when not NULL,
 * is B already packed (glad_bf16_pack_b, or glad_bf16_cached_bt for a
 * network's weights) and B is not read. 0, GLAD_EINVAL, or GLAD_ENOMEM with
 * C untouched. Parallel (OpenMP) above 2e6 products unless called inside a
 * parallel region. */
int glad_bf16_gemm(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb, int bt, const uint16_t *Bp, int M,
                   int N, int K, float alpha, int add);
/* the packed layouts of its operands (uint16_t elements): A as (M up to 8) x
 * (K up to even) rows, B as (K up to even)/2 rows of (N up to 32) bf16 pairs,
 * zero-padded; the packers write the padding too */
size_t glad_bf16_pa_elems(int M, int K);
size_t glad_bf16_pb_elems(int K, int N);
void glad_bf16_pack_a(uint16_t *dst, const float *A, size_t lda, int M, int K);
void glad_bf16_pack_b(uint16_t *dst, const float *B, size_t ldb, int bt, int K, int N);
/* glad_bf16_gemm on packed operands */
void glad_bf16_gemm_packed(float *C, size_t ldc, const uint16_t *Ap, const uint16_t *Bp, int M, int N, int K, float alpha, int add);
/* from the cache in use: glad_bf16_pack_b of w^T for weights w (N,K)
 * (a linear layer's), made on the first call; NULL without a cache in use
 * or memory. Not from inside a parallel region. */
const uint16_t *glad_bf16_cached_bt(const float *w, int K, int N);

/* from the cache in use: make(d, w, NI, NO) into bytes bytes at d (64-byte aligned), made on the first call, keyed by
 * w, NI, NO, bytes and make: another layout of a network's weights that a bf16 kernel reads (the bf16 fused block's
 * depthwise weights, nhwc.h); NULL without a cache in use or memory. Not from inside a parallel region. */
typedef void (*glad_bf16_make)(void *d, const float *w, int NI, int NO);
const void *glad_bf16_cached_make(const float *w, int NI, int NO, size_t bytes, glad_bf16_make make);

/* bf16 bits of x rounded to nearest even (NaN stays a quiet NaN), and back */
uint16_t glad_bf16_from_f32(float x);
float glad_bf16_to_f32(uint16_t h);
/* x rounded to bf16 and widened again: what a bf16 GEMM sees of x */
static inline float glad_bf16_round(float x) { return glad_bf16_to_f32(glad_bf16_from_f32(x)); }

#endif
