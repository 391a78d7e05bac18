/* conv_nhwc.c - 2-D convolution on channels-last (H,W,C) images with TFLite
 * weights (OC,kh,kw,C): im2col into rows of kh*kw*C (the weight's own
 * layout) and sgemm, out (Ho*Wo, OC) = col (Ho*Wo, K) w^T (K, OC); a 1x1
 * stride-1 unpadded conv is the sgemm on x itself. Explicit top/left padding
 * (TF "SAME" may pad more at the bottom/right), dilation, bias, a clamp
 * [lo, hi] and an optional residual added after the clamp, all fused. The
 * output pixels are split into one contiguous slice per thread inside a
 * single parallel region (OpenBLAS runs single-threaded there), so a layer
 * costs one barrier. Not the NCHW conv of conv2d.c (no backward here).
 * In fp32 on an AVX-512F CPU (nn/cpu.h) the GEMM is glad_gemm_nhwc_avx512
 * (nhwc.h): 6 pixels x 64 output channels of zmm accumulators over w^T
 * (K, OC) (the caller's cached copy, or transposed per call), the epilogue
 * applied in registers before the one store; it sums k in order with FMA,
 * so it rounds differently from OpenBLAS (GLAD_NO_AVX512=1 keeps sgemm).
 * In bf16 (nn/bf16.h) the GEMM takes bf16 operands with fp32 sums, the
 * weights packed once in the cache in use: glad_gemm_nhwc_bf16, the same
 * tiles on vdpbf16ps (two k an instruction) with the rows rounded to bf16
 * as they are read and the fp32 epilogue in registers, also for the fused
 * block (invres.c, whose expansion stores its output rounded to bf16 from
 * the registers: glad_gemm_nhwc_bf16h, and its stem, glad_conv_rows_bf16h:
 * a few output pixels' im2col rows at a time); glad_bf16_gemm_packed + the epilogue above for K over
 * GLAD_GEMM_BF16_KMAX (the same numbers: both sum the pairs of k in order). */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/glad.h"
#include "nn/bf16.h"
#include "nn/cpu.h"
#include "nn/nhwc.h"
#include "nn/nn.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_AVX512 1
#endif

size_t glad_conv2d_nhwc_workspace(int C, int kh, int kw, int Ho, int Wo, int direct)
{
    return direct ? 0 : (size_t)C * kh * kw * Ho * Wo;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CONV_CLONES
#endif

/* o (n, OC) = clamp(o + b, lo, hi) (+ res) */
CONV_CLONES
static void epilogue(float *o, const float *b, const float *res, int n, int OC, float lo, float hi)
{
    for (int p = 0; p < n; p++) {
        float *r = o + (size_t)p * OC;
        if (b) for (int c = 0; c < OC; c++) r[c] += b[c];
        for (int c = 0; c < OC; c++) {
            float v = r[c];
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            r[c] = v;
        }
        if (res) {
            const float *q = res + (size_t)p * OC;
            for (int c = 0; c < OC; c++) r[c] += q[c];
        }
    }
}

#ifdef CONV_AVX512
/* the epilogue of every tile below (fp32 and bf16): 16 columns v of output row r, t + bias, clamped to [lo, hi]
 * (vlo, vhi), + res, stored under mask m */
__attribute__((target("avx512f"), always_inline)) static inline void tile_store(float *o, size_t ldo, const float *bias,
                                                                              const float *res, int r, int v, __mmask16 m,
                                                                              __m512 t, __m512 vlo, __m512 vhi)
{
    if (bias) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, bias + 16 * v));
    t = _mm512_min_ps(_mm512_max_ps(t, vlo), vhi);
    if (res) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, res + (size_t)r * ldo + 16 * v));
    _mm512_mask_storeu_ps(o + (size_t)r * ldo + 16 * v, m, t);
}
/* the same for named accumulators c<r><v> (the unrolled tiles) */
#define TILE_OUT(r, v, m) tile_store(o, ldo, bias, res, r, v, m, c##r##v, vlo, vhi);

/* o (R, 16 NV; rows ldo apart) = clamp(a (R, K; rows lda apart) bt (K, 16 NV; rows ldb apart) + bias, lo, hi) + res
 * (rows ldo apart), the last 16 columns under mask km; R <= 6, NV <= 4 */
__attribute__((target("avx512f"), always_inline)) static inline void tile(float *o, size_t ldo, const float *a, size_t lda,
                                                                        const float *bt, size_t ldb, int K, int R, int NV,
                                                                        __mmask16 km, const float *bias, const float *res,
                                                                        float lo, float hi)
{
    __m512 c[6][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 bv[4];
        const float *bk = bt + (size_t)k * ldb;
        for (int v = 0; v < NV; v++) bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(km, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(a[(size_t)r * lda + k]);
            for (int v = 0; v < NV; v++) c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
        }
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) tile_store(o, ldo, bias, res, r, v, v == NV - 1 ? km : (__mmask16)0xffff, c[r][v], vlo, vhi);
}

/* tile for R = 6, NV = 4 with 24 named accumulators: GCC keeps an array of
 * that many on the stack (stored and reloaded every k). Same operations in
 * the same order as tile, so the same numbers. */
__attribute__((target("avx512f"), always_inline)) static inline void tile6x4(float *o, size_t ldo, const float *a, size_t lda,
                                                                           const float *bt, size_t ldb, int K, __mmask16 km,
                                                                           const float *bias, const float *res, float lo,
                                                                           float hi)
{
#define ACC(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0, c##r##3 = c##r##0;
    ACC(0) ACC(1) ACC(2) ACC(3) ACC(4) ACC(5)
#undef ACC
    for (int k = 0; k < K; k++) {
        const float *bk = bt + (size_t)k * ldb, *ak = a + k;
        __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16), b2 = _mm512_loadu_ps(bk + 32);
        __m512 b3 = _mm512_maskz_loadu_ps(km, bk + 48);
#define ROW(r) { __m512 av = _mm512_set1_ps(ak[(size_t)(r) * lda]); \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); \
        c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2); c##r##3 = _mm512_fmadd_ps(av, b3, c##r##3); }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#define OUTROW(r) TILE_OUT(r, 0, 0xffff) TILE_OUT(r, 1, 0xffff) TILE_OUT(r, 2, 0xffff) TILE_OUT(r, 3, km)
    OUTROW(0) OUTROW(1) OUTROW(2) OUTROW(3) OUTROW(4) OUTROW(5)
#undef OUTROW
}

/* o (n, OC) = clamp(a (n, K) wt (K, OC) + b, lo, hi) (+ res (n, OC)), rows ldo, lda, ldb apart: blocks of 48 rows
 * (in L2) against panels of 64 output channels of wt, in tiles of 6 rows */
__attribute__((target("avx512f"))) void glad_gemm_nhwc_avx512(float *o, size_t ldo, const float *a, size_t lda,
                                                              const float *wt, size_t ldb, const float *b, const float *res,
                                                              int n, int K, int OC, float lo, float hi)
{
    for (int r0 = 0; r0 < n; r0 += 48) {
        int r1 = r0 + 48 < n ? r0 + 48 : n;
        for (int n0 = 0; n0 < OC; n0 += 64) {
            int cols = OC - n0 < 64 ? OC - n0 : 64, NV = (cols + 15) / 16, tail = cols - 16 * (NV - 1);
            __mmask16 km = tail == 16 ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
            const float *bt = wt + n0, *bb = b ? b + n0 : NULL;
            for (int r = r0; r < r1; r += 6) {
                int R = r1 - r < 6 ? r1 - r : 6;
                float *oo = o + (size_t)r * ldo + n0;
                const float *aa = a + (size_t)r * lda, *rr = res ? res + (size_t)r * ldo + n0 : NULL;
                /* constant R and NV, so the accumulators stay in registers */
#define TILE_CASE(RR, VV) case RR * 8 + VV: tile(oo, ldo, aa, lda, bt, ldb, K, RR, VV, km, bb, rr, lo, hi); break;
#define TILE_ROW(RR) TILE_CASE(RR, 1) TILE_CASE(RR, 2) TILE_CASE(RR, 3) TILE_CASE(RR, 4)
                switch (R * 8 + NV) {
                case 6 * 8 + 4: tile6x4(oo, ldo, aa, lda, bt, ldb, K, km, bb, rr, lo, hi); break;
                TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_CASE(6, 1) TILE_CASE(6, 2) TILE_CASE(6, 3)
                default: break;
                }
#undef TILE_ROW
#undef TILE_CASE
            }
        }
    }
}
#endif

#ifdef CONV_AVX512
/* ---- the bf16 twin (AVX512_BF16): the same tiles and epilogue, vdpbf16ps
 * summing two k per instruction into fp32 lanes. The weights are
 * glad_bf16_pack_b's layout (the cache's, packed once per network): pair
 * row p holds (w[2p][c], w[2p+1][c]) for every column c, so one 64-byte load
 * is 16 columns' pairs. The activations are rounded to bf16 (nearest even,
 * as the packers) a block of rows at a time into a stack buffer and then
 * serve every panel of 64 columns, so each is converted once. */
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

static inline uint32_t pair_at(const uint16_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
    return v;
}

/* d (Kp = K up to even bf16) = s (K floats) rounded to bf16, the pad 0 */
BF16_TARGET static void cvt_row(uint16_t *d, const float *s, int K, int Kp)
{
    int k = 0;
    for (; k + 32 <= K; k += 32)
        _mm512_storeu_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16), _mm512_loadu_ps(s + k)));
    if (k < Kp) {
        int m = K - k, q = Kp - k;
        __mmask16 m0 = m >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << m) - 1);
        __mmask16 m1 = m <= 16 ? 0 : (__mmask16)((1u << (m - 16)) - 1);
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, s + k + 16), _mm512_maskz_loadu_ps(m0, s + k));
        _mm512_mask_storeu_epi16(d + k, (__mmask32)((1ull << q) - 1), v);
    }
}

/* tile_store's bf16 twin (the bf16 fused block's expansion, invres.c, whose depthwise conv then reads half the bytes):
 * t + bias clamped to [lo, hi], rounded to bf16 (vcvtneps2bf16: nearest even), stored under mask m; no residual */
BF16_TARGET __attribute__((always_inline)) static inline void tile_store16(uint16_t *q, size_t ldo, const float *bias, int r,
                                                                            int v, __mmask16 m, __m512 t, __m512 vlo, __m512 vhi)
{
    if (bias) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, bias + 16 * v));
    t = _mm512_min_ps(_mm512_max_ps(t, vlo), vhi);
    _mm256_mask_storeu_epi16(q + (size_t)r * ldo + 16 * v, m, (__m256i)_mm512_cvtneps_pbh(t));
}
/* the bf16 tiles' store: into q in bf16 when the caller gave one, else into o in fp32 */
#define BTILE_OUT(r, v, m) { if (q) tile_store16(q, ldo, bias, r, v, m, c##r##v, vlo, vhi); else TILE_OUT(r, v, m) }

/* tile's twin: a (R rows of P bf16 pairs, lda bf16 apart), wq (P pair rows of 16 NV column pairs, ldq bf16 apart);
 * R NV <= 24, R <= 12 */
BF16_TARGET __attribute__((always_inline)) static inline void btile(float *o, uint16_t *q, size_t ldo, const uint16_t *a,
                                                                     size_t lda, const uint16_t *wq, size_t ldq, int P, int R,
                                                                     int NV, __mmask16 km, const float *bias, const float *res,
                                                                     float lo, float hi)
{
    __m512 c[12][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < P; p++) {
        __m512bh bv[4];
        const uint16_t *bk = wq + (size_t)p * ldq;
        for (int v = 0; v < NV; v++) bv[v] = (__m512bh)_mm512_loadu_si512(bk + 32 * v);
        for (int r = 0; r < R; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair_at(a + (size_t)r * lda + 2 * p));
            for (int v = 0; v < NV; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], av, bv[v]);
        }
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            if (q) tile_store16(q, ldo, bias, r, v, v == NV - 1 ? km : (__mmask16)0xffff, c[r][v], vlo, vhi);
            else tile_store(o, ldo, bias, res, r, v, v == NV - 1 ? km : (__mmask16)0xffff, c[r][v], vlo, vhi);
}

/* btile for R = 6, NV = 4 with named accumulators (as tile6x4, and for the same reason) */
BF16_TARGET __attribute__((always_inline)) static inline void btile6x4(float *o, uint16_t *q, size_t ldo, const uint16_t *a, size_t lda,
                                                                        const uint16_t *wq, size_t ldq, int P, __mmask16 km,
                                                                        const float *bias, const float *res, float lo, float hi)
{
#define ACC(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0, c##r##3 = c##r##0;
    ACC(0) ACC(1) ACC(2) ACC(3) ACC(4) ACC(5)
#undef ACC
    for (int p = 0; p < P; p++) {
        const uint16_t *bk = wq + (size_t)p * ldq, *ak = a + 2 * p;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk), b1 = (__m512bh)_mm512_loadu_si512(bk + 32);
        __m512bh b2 = (__m512bh)_mm512_loadu_si512(bk + 64), b3 = (__m512bh)_mm512_loadu_si512(bk + 96);
#define ROW(r) { __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair_at(ak + (size_t)(r) * lda)); \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, av, b0); c##r##1 = _mm512_dpbf16_ps(c##r##1, av, b1); \
        c##r##2 = _mm512_dpbf16_ps(c##r##2, av, b2); c##r##3 = _mm512_dpbf16_ps(c##r##3, av, b3); }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#define OUTROW(r) BTILE_OUT(r, 0, 0xffff) BTILE_OUT(r, 1, 0xffff) BTILE_OUT(r, 2, 0xffff) BTILE_OUT(r, 3, km)
    OUTROW(0) OUTROW(1) OUTROW(2) OUTROW(3) OUTROW(4) OUTROW(5)
#undef OUTROW
}

/* btile for R = 12, NV = 2: with one or two vectors of columns 6 rows give
 * 6 or 12 chains of vdpbf16ps, too few to hide its latency (the projections
 * to 16 - 32 channels of MobileNetV2's large maps are such panels), 12 rows
 * give 24 */
BF16_TARGET __attribute__((always_inline)) static inline void btile12x2(float *o, uint16_t *q, size_t ldo, const uint16_t *a, size_t lda,
                                                                         const uint16_t *wq, size_t ldq, int P, __mmask16 km,
                                                                         const float *bias, const float *res, float lo, float hi)
{
#define ACC(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0;
    ACC(0) ACC(1) ACC(2) ACC(3) ACC(4) ACC(5) ACC(6) ACC(7) ACC(8) ACC(9) ACC(10) ACC(11)
#undef ACC
    for (int p = 0; p < P; p++) {
        const uint16_t *bk = wq + (size_t)p * ldq, *ak = a + 2 * p;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk), b1 = (__m512bh)_mm512_loadu_si512(bk + 32);
#define ROW(r) { __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair_at(ak + (size_t)(r) * lda)); \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, av, b0); c##r##1 = _mm512_dpbf16_ps(c##r##1, av, b1); }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8) ROW(9) ROW(10) ROW(11)
#undef ROW
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#define OUTROW(r) BTILE_OUT(r, 0, 0xffff) BTILE_OUT(r, 1, km)
    OUTROW(0) OUTROW(1) OUTROW(2) OUTROW(3) OUTROW(4) OUTROW(5) OUTROW(6) OUTROW(7) OUTROW(8) OUTROW(9) OUTROW(10) OUTROW(11)
#undef OUTROW
}

/* bf16 of a block of rows: 96 KB of stack, 48 rows up to K = 1024 (MobileNetV2's K <= 960) */
enum { BF16_ROWS = 49152 };

/* o (m, OC) = clamp(ab (m, Kp bf16, rows ldab apart) wq + b, lo, hi) (+ res): panels of 64 output channels, in tiles of
 * 6 rows (12 for panels of up to 32 channels); into q (m, OC) in bf16 instead when q is not NULL (o NULL, res NULL) */
BF16_TARGET static void panels(float *o, uint16_t *q, size_t ldo, const uint16_t *ab, size_t ldab, const uint16_t *wq,
                               size_t ldq, const float *b, const float *res, int m, int Kp, int OC, float lo, float hi)
{
    int P = Kp / 2;
    for (int n0 = 0; n0 < OC; n0 += 64) {
        int cols = OC - n0 < 64 ? OC - n0 : 64, NV = (cols + 15) / 16, tail = cols - 16 * (NV - 1);
        int step = NV <= 2 ? 12 : 6;
        __mmask16 km = tail == 16 ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
        const uint16_t *bq = wq + (size_t)2 * n0;
        const float *bb = b ? b + n0 : NULL;
        for (int r = 0; r < m; r += step) {
            int R = m - r < step ? m - r : step;
            float *oo = o ? o + (size_t)r * ldo + n0 : NULL;
            uint16_t *qq = q ? q + (size_t)r * ldo + n0 : NULL;
            const uint16_t *aa = ab + (size_t)r * ldab;
            const float *rr = res ? res + (size_t)r * ldo + n0 : NULL;
#define TILE_CASE(RR, VV) case RR * 8 + VV: btile(oo, qq, ldo, aa, ldab, bq, ldq, P, RR, VV, km, bb, rr, lo, hi); break;
#define TILE_ROW(RR) TILE_CASE(RR, 1) TILE_CASE(RR, 2) TILE_CASE(RR, 3) TILE_CASE(RR, 4)
            /* constant R and NV, so the accumulators stay in registers */
            switch (R * 8 + NV) {
            case 6 * 8 + 4: btile6x4(oo, qq, ldo, aa, ldab, bq, ldq, P, km, bb, rr, lo, hi); break;
            case 12 * 8 + 2: btile12x2(oo, qq, ldo, aa, ldab, bq, ldq, P, km, bb, rr, lo, hi); break;
            TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_CASE(6, 1) TILE_CASE(6, 2) TILE_CASE(6, 3)
            TILE_CASE(7, 1) TILE_CASE(7, 2) TILE_CASE(8, 1) TILE_CASE(8, 2) TILE_CASE(9, 1) TILE_CASE(9, 2)
            TILE_CASE(10, 1) TILE_CASE(10, 2) TILE_CASE(11, 1) TILE_CASE(11, 2) TILE_CASE(12, 1)
            default: break;
            }
#undef TILE_ROW
#undef TILE_CASE
        }
    }
}

/* glad_gemm_nhwc_avx512's twin on bf16 operands (nhwc.h): blocks of up to 48 rows rounded to bf16 once, each
 * against every panel; into o in fp32, or q in bf16 */
BF16_TARGET static void gemm_bf16(float *o, uint16_t *q, size_t ldo, const float *a, size_t lda, const uint16_t *wq,
                                  size_t ldq, const float *b, const float *res, int n, int K, int OC, float lo, float hi)
{
    uint16_t ab[BF16_ROWS] __attribute__((aligned(64)));
    int Kp = (K + 1) / 2 * 2, rb = BF16_ROWS / Kp / 12 * 12;
    rb = rb > 48 ? 48 : rb;
    for (int r0 = 0; r0 < n; r0 += rb) {
        int r1 = r0 + rb < n ? r0 + rb : n;
        /* contiguous rows of even K (every call of invres.c's) are one run: no tail per row */
        if (lda == (size_t)K && K == Kp) cvt_row(ab, a + (size_t)r0 * lda, (r1 - r0) * K, (r1 - r0) * K);
        else
            for (int r = r0; r < r1; r++) cvt_row(ab + (size_t)(r - r0) * Kp, a + (size_t)r * lda, K, Kp);
        panels(o ? o + (size_t)r0 * ldo : NULL, q ? q + (size_t)r0 * ldo : NULL, ldo, ab, (size_t)Kp, wq, ldq, b,
               res ? res + (size_t)r0 * ldo : NULL, r1 - r0, Kp, OC, lo, hi);
    }
}

BF16_TARGET void glad_gemm_nhwc_bf16(float *o, size_t ldo, const float *a, size_t lda, const uint16_t *wq, size_t ldq,
                                     const float *b, const float *res, int n, int K, int OC, float lo, float hi)
{
    gemm_bf16(o, NULL, ldo, a, lda, wq, ldq, b, res, n, K, OC, lo, hi);
}

/* the same stored in bf16 (nhwc.h) */
BF16_TARGET void glad_gemm_nhwc_bf16h(uint16_t *q, size_t ldq16, const float *a, size_t lda, const uint16_t *wq, size_t ldq,
                                      const float *b, int n, int K, int OC, float lo, float hi)
{
    gemm_bf16(NULL, q, ldq16, a, lda, wq, ldq, b, NULL, n, K, OC, lo, hi);
}

/* the same on rows already in bf16 (nhwc.h), in blocks of 48 rows so a block stays in L1 across the panels */
BF16_TARGET void glad_gemm_nhwc_bf16a(float *o, size_t ldo, const uint16_t *a, size_t lda, const uint16_t *wq, size_t ldq,
                                      const float *b, const float *res, int n, int K, int OC, float lo, float hi)
{
    for (int r0 = 0; r0 < n; r0 += 48)
        panels(o + (size_t)r0 * ldo, NULL, ldo, a + (size_t)r0 * lda, lda, wq, ldq, b, res ? res + (size_t)r0 * ldo : NULL,
               n - r0 < 48 ? n - r0 : 48, K, OC, lo, hi);
}
#endif

/* col (n, K) rows for output pixels p0.. : col[p, (ky*kw+kx)*C + c] = x[i*sh - pt + ky*dh, j*sw - pl + kx*dw, c] or 0 */
static void im2col_rows(float *col, const float *x, int H, int W, int C, int kh, int kw, int sh, int sw, int dh, int dw,
                        int pt, int pl, int Wo, int p0, int n)
{
    int K = C * kh * kw;
    for (int p = p0; p < p0 + n; p++) {
        int i = p / Wo, j = p % Wo;
        float *r = col + (size_t)(p - p0) * K;
        for (int ky = 0; ky < kh; ky++) {
            int y = i * sh - pt + ky * dh, x0 = j * sw - pl;
            if (dw == 1 && y >= 0 && y < H && x0 >= 0 && x0 + kw <= W) {
                /* the row's kw taps are adjacent in x: one copy, a plain loop (C is often 3, a call per tap costs more) */
                const float *s = x + ((size_t)y * W + x0) * C;
                float *d = r + (size_t)ky * kw * C;
                for (int q = 0; q < kw * C; q++) d[q] = s[q];
                continue;
            }
            for (int kx = 0; kx < kw; kx++) {
                int xx = j * sw - pl + kx * dw;
                float *d = r + ((size_t)ky * kw + kx) * C;
                if (y < 0 || y >= H || xx < 0 || xx >= W) memset(d, 0, sizeof(float) * (size_t)C);
                else memcpy(d, x + ((size_t)y * W + xx) * C, sizeof(float) * (size_t)C);
            }
        }
    }
}

#ifdef CONV_AVX512
/* im2col rows of pixels p0.. straight into bf16 (Kp = K up to even, the pad 0) for a kernel row of at most 16 floats
 * (kw C <= 16, dw 1: the stem's 9): per kernel row one load of 16 floats, vcvtneps2bf16 with the lanes past the row
 * zeroed, one store of 16 bf16 whose tail the next kernel row (or pixel) overwrites, the last one's tail being the
 * pad's 0 (so ab holds 16 bf16 more than the rows); the numbers of im2col_rows + cvt_row. Taps outside the image (the
 * edge pixels) through a zeroed row of 16; the load is masked where 16 floats would pass the end of x */
BF16_TARGET static void im2col_rows16(uint16_t *ab, int Kp, const float *x, int H, int W, int C, int kh, int kw, int sh,
                                      int sw, int dh, int pt, int pl, int Wo, int p0, int n)
{
    int kr = kw * C, i = p0 / Wo, j = p0 % Wo;
    __mmask16 m = (__mmask16)((1u << kr) - 1);
    size_t end = (size_t)H * W * C;
    for (int p = 0; p < n; p++) {
        int x0 = j * sw - pl;
        uint16_t *r = ab + (size_t)p * Kp;
        for (int ky = 0; ky < kh; ky++) {
            int y = i * sh - pt + ky * dh;
            __m512 v;
            if (y >= 0 && y < H && x0 >= 0 && x0 + kw <= W) {
                size_t at = ((size_t)y * W + x0) * C;
                v = at + 16 <= end ? _mm512_loadu_ps(x + at) : _mm512_maskz_loadu_ps(m, x + at);
            } else {
                float t[16] = {0};
                for (int kx = 0; kx < kw; kx++)
                    if (y >= 0 && y < H && x0 + kx >= 0 && x0 + kx < W)
                        memcpy(t + kx * C, x + ((size_t)y * W + x0 + kx) * C, sizeof(float) * (size_t)C);
                v = _mm512_loadu_ps(t);
            }
            _mm256_storeu_si256((__m256i *)(r + ky * kr), (__m256i)_mm512_maskz_cvtneps_pbh(m, v));
        }
        if (++j == Wo) {
            j = 0;
            i++;
        }
    }
}

/* nhwc.h: im2col of a chunk of pixels into fp32 on the stack (12288 floats: 48 KB, L1), then gemm_bf16, which rounds
 * the rows to bf16 as glad_conv2d_nhwc_forward's bf16 GEMM does (or straight into bf16 for short kernel rows); the
 * chunk's rows don't change a row's numbers */
BF16_TARGET int glad_conv_rows_bf16h(uint16_t *q, size_t ldq16, const float *x, int H, int W, int C, int kh, int kw, int sh,
                                     int sw, int dh, int dw, int pt, int pl, int Wo, int p0, int n, const uint16_t *wq,
                                     size_t ldq, const float *b, int OC, float lo, float hi)
{
    enum { COLS = 12288 };
    int K = C * kh * kw, rb = COLS / K;
    if (rb < 1) return GLAD_EUNSUPPORTED;
    rb = rb > 48 ? 48 : rb;
    int Kp = (K + 1) / 2 * 2;
    if (kw * C <= 16 && dw == 1 && Kp <= 128) {   /* short kernel rows, up to 8 of them: straight into bf16 */
        uint16_t ab[48 * 128 + 16] __attribute__((aligned(64)));
        for (int r0 = 0; r0 < n; r0 += 48) {
            int m = n - r0 < 48 ? n - r0 : 48;
            im2col_rows16(ab, Kp, x, H, W, C, kh, kw, sh, sw, dh, pt, pl, Wo, p0 + r0, m);
            panels(NULL, q + (size_t)r0 * ldq16, ldq16, ab, (size_t)Kp, wq, ldq, b, NULL, m, Kp, OC, lo, hi);
        }
        return 0;
    }
    float col[COLS];
    for (int r0 = 0; r0 < n; r0 += rb) {
        int m = n - r0 < rb ? n - r0 : rb;
        im2col_rows(col, x, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Wo, p0 + r0, m);
        gemm_bf16(NULL, q + (size_t)r0 * ldq16, ldq16, col, (size_t)K, wq, ldq, b, NULL, m, K, OC, lo, hi);
    }
    return 0;
}
#endif

#ifdef CONV_AVX512
/* nhwc.h: im2col of a chunk of pixels on the stack (48 KB, L1), then the fp32 GEMM with its epilogue in registers, as
 * conv_rows runs it: each output sums its k in order whatever the chunk, so the numbers are the unfused conv's */
int glad_conv_rows_f32(float *o, size_t ldo, const float *x, int H, int W, int C, int kh, int kw, int sh, int sw, int dh,
                       int dw, int pt, int pl, int Wo, int p0, int n, const float *wt, const float *b, int OC, float lo, float hi)
{
    enum { COLS = 12288 };
    int K = C * kh * kw, rb = COLS / K;
    if (rb < 1) return GLAD_EUNSUPPORTED;
    rb = rb > 48 ? 48 : rb;
    float col[COLS];
    for (int r0 = 0; r0 < n; r0 += rb) {
        int m = n - r0 < rb ? n - r0 : rb;
        im2col_rows(col, x, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Wo, p0 + r0, m);
        glad_gemm_nhwc_avx512(o + (size_t)r0 * ldo, ldo, col, (size_t)K, wt, (size_t)OC, b, NULL, m, K, OC, lo, hi);
    }
    return 0;
}
#endif

/* output pixels [p0, p1) in chunks small enough that the epilogue finds the
 * sgemm's output still in cache; col holds the slice's im2col rows */
static void conv_rows(float *out, const float *x, const float *w, const float *b, const float *res, int H, int W, int C,
                      int OC, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo,
                      float hi, int direct, float *col, int p0, int p1, const uint16_t *wp, uint16_t *ap,
                      const float *wt)
{
    int K = C * kh * kw, chunk = (int)(32768 / (OC + K)) + 1;
    for (int q0 = p0; q0 < p1; q0 += chunk) {
        int n = p1 - q0 < chunk ? p1 - q0 : chunk;
        const float *a = x + (size_t)q0 * C;
        if (!direct) {
            im2col_rows(col, x, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Wo, q0, n);
            a = col;
        }
        float *o = out + (size_t)q0 * OC;
#ifdef CONV_AVX512
        if (wt && !wp) {   /* fp32 on AVX-512F: wt = w^T, the epilogue in the GEMM */
            glad_gemm_nhwc_avx512(o, (size_t)OC, a, (size_t)K, wt, (size_t)OC, b, res ? res + (size_t)q0 * OC : NULL, n, K, OC,
                                  lo, hi);
            continue;
        }
#endif
#ifdef CONV_AVX512
        if (wp && !ap) {   /* bf16: wp the packed weights, the epilogue in the GEMM */
            glad_gemm_nhwc_bf16(o, (size_t)OC, a, (size_t)K, wp, (size_t)2 * ((OC + 31) / 32 * 32), b,
                                res ? res + (size_t)q0 * OC : NULL, n, K, OC, lo, hi);
            continue;
        }
#endif
        if (wp) {   /* bf16 with K above the tiled GEMM's: ap room for a chunk's packed rows */
            glad_bf16_pack_a(ap, a, (size_t)K, n, K);
            glad_bf16_gemm_packed(o, (size_t)OC, ap, wp, n, OC, K, 1.0f, 0);
        } else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, OC, K, 1.0f, a, K, w, K, 0.0f, o, OC);
        epilogue(o, b, res ? res + (size_t)q0 * OC : NULL, n, OC, lo, hi);
    }
}

void glad_conv2d_nhwc_wt(float *wt, const float *w, int OC, int K)
{
    for (int k = 0; k < K; k++)
        for (int o = 0; o < OC; o++) wt[(size_t)k * OC + o] = w[(size_t)o * K + k];
}

void glad_conv2d_nhwc_forward(float *out, const float *x, const float *w, const float *b, const float *res, int H,
                              int W, int C, int OC, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top,
                              int pad_left, int Ho, int Wo, float lo, float hi, float *ws)
{
    glad_conv2d_nhwc_forward_wt(out, x, w, NULL, b, res, H, W, C, OC, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Ho, Wo,
                                lo, hi, ws);
}

// x is (H,W,C), w is (OC,kh,kw,C), wt is w^T or NULL, b is (OC) or NULL, res is (Ho,Wo,OC) or NULL, out is (Ho,Wo,OC)
void glad_conv2d_nhwc_forward_wt(float *out, const float *x, const float *w, const float *wt, const float *b,
                                 const float *res, int H, int W, int C, int OC, int kh, int kw, int sh, int sw, int dh,
                                 int dw, int pad_top, int pad_left, int Ho, int Wo, float lo, float hi, float *ws)
{
    int K = C * kh * kw, N = Ho * Wo;
    int direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_top == 0 && pad_left == 0 && Ho == H && Wo == W;
    /* enough rows per slice that the sgemm stays efficient */
    long work = (long)N * OC * K;
    int nt = work < 200000 ? 1 : 0;
    /* bf16: the packed weights from the cache in use (or packed here); without
     * memory for them or a thread's packed rows, that thread runs fp32 */
    const uint16_t *wp = NULL;
    uint16_t *wown = NULL;
    if (glad_precision_get() == GLAD_PREC_BF16 && !(wp = glad_bf16_cached_bt(w, K, OC))) {
        size_t nb = (glad_bf16_pb_elems(K, OC) * sizeof(uint16_t) + 63) / 64 * 64;
        if ((wown = aligned_alloc(64, nb))) glad_bf16_pack_b(wown, w, (size_t)K, 1, K, OC);
        wp = wown;
    }
    /* fp32 on AVX-512F: the register-tiled GEMM over w^T (transposed here
     * when the caller keeps no copy; without memory for it, sgemm) */
    float *wtown = NULL;
    if (!wp && glad_nn_avx512() && !wt && (wtown = malloc(sizeof(float) * (size_t)K * OC)))
        glad_conv2d_nhwc_wt(wtown, w, OC, K);
    const float *wtu = wp || !glad_nn_avx512() ? NULL : wt ? wt : wtown;
    int chunk = (int)(32768 / (OC + K)) + 1, tiled = 0;
#ifdef CONV_AVX512
    tiled = K <= GLAD_GEMM_BF16_KMAX;
#endif
    // each thread computes its own slice of output pixels (and of the im2col rows)
    #pragma omp parallel if (!nt)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        int p0 = (int)((long)N * t / T), p1 = (int)((long)N * (t + 1) / T);
        /* the tiled bf16 GEMM converts its rows itself; the general one takes them packed */
        uint16_t *ap = wp && !tiled ? aligned_alloc(64, (glad_bf16_pa_elems(chunk, K) * sizeof(uint16_t) + 63) / 64 * 64) : NULL;
        conv_rows(out, x, w, b, res, H, W, C, OC, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Wo, lo, hi, direct,
                  direct ? NULL : ws + (size_t)p0 * K, p0, p1, ap || tiled ? wp : NULL, ap, wtu);
        free(ap);
    }
    free(wown);
    free(wtown);
}
