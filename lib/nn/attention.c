/* attention.c - multi-head self-attention in guided diffusion's legacy QKV
 * layout. Per (batch, head), with s2 = c^-1/2 = (c^-1/4)^2:
 *   L[t,s] = s2 sum_c q[c,t] k[c,s],  W = softmax_s(L),  a[c,t] = sum_s W[t,s] v[c,s]
 * The weights are kept transposed, Wt[s][t] (keys by rows), so that for a
 * block of 32 queries the logits, the softmax (down the columns) and the
 * weighted sum all read contiguous rows: the block's Wt (T x 32) stays in L2,
 * and is saved for the backward as one contiguous run (blocked, below).
 * On AVX-512F the two products of a block are one 8 x 32 register tile
 * kernel (no packing); elsewhere, or when T or c do not fit it, sgemm.
 * backward: dV = dA W, dW = dA^T V, dL = W (dW - rowsum(W dW)),
 *           dQ = s2 K dL^T, dK = s2 Q dL, as sgemm on the transposed layout.
 * In bf16 (nn/bf16.h: inference and mixed-precision training; T % 32 == 0
 * and c % 8 == 0) a query block's two products take bf16 operands with fp32
 * sums in the same transposed layout, fused per block (forward_bf16 below:
 * the column maxima in the logits' tile, the exponentials written straight
 * to bf16 pairs, the normalisation in the output's tile), and so do the
 * backward's five (backward_bf16; the softmax backward in fp32, on the
 * forward's fp32 weights); results do not depend on the thread count. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "core/glad.h"
#include "nn/bf16.h"
#include "nn/cpu.h"
#include "nn/fastmath.h"
#include "nn/nn.h"
#include "nn/tile.h"

enum { QB = 32 };   /* queries per block: two zmm of lanes */

/* The saved weights of a (batch, head) pair, T x T floats, in one of two
 * layouts that forward and backward agree on: blocked (AVX-512F and T % QB
 * == 0, every path that runs there) keeps query block q's weights as T rows
 * of QB, Wt[s][q QB + j] at q QB T + s QB + j, so a block is written and read
 * as one contiguous run (as rows T apart, 2 cache lines at every 4 KB of a
 * T = 1024 plane, the forward's stores of the weights were 80 % of its
 * softmax); otherwise row-major, Wt[s][t] at s T + t. */
static int blocked(int T) { return glad_nn_avx512() && T % QB == 0; }

/* softmax down the columns of S (T rows of nb, stride ld <= QB): S[s][j] =
 * exp(S[s][j] - max_s) / sum_s, the sums in double */
GLAD_VEC_CLONES static void softmax_cols(float *S, int T, int nb, int ld)
{
    float mx[QB];
    double sum[QB];
    for (int j = 0; j < nb; j++) { mx[j] = S[j]; sum[j] = 0; }
    for (int s = 1; s < T; s++) {
        const float *r = S + (size_t)s * ld;
        #pragma omp simd
        for (int j = 0; j < nb; j++) mx[j] = r[j] > mx[j] ? r[j] : mx[j];
    }
    for (int s = 0; s < T; s++) {
        float *r = S + (size_t)s * ld;
        #pragma omp simd
        for (int j = 0; j < nb; j++) { r[j] = glad_expf_fast(r[j] - mx[j]); sum[j] += r[j]; }
    }
    float inv[QB];
    for (int j = 0; j < nb; j++) inv[j] = (float)(1.0 / sum[j]);
    for (int s = 0; s < T; s++) {
        float *r = S + (size_t)s * ld;
        #pragma omp simd
        for (int j = 0; j < nb; j++) r[j] *= inv[j];
    }
}

/* z (4 x 8 doubles) += the 32 floats of a0, a1: column sums in double */
__attribute__((target("avx512f"))) static void add32_pd(__m512d z[4], __m512 a0, __m512 a1)
{
    z[0] = _mm512_add_pd(z[0], _mm512_cvtps_pd(_mm512_castps512_ps256(a0)));
    z[1] = _mm512_add_pd(z[1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a0), 1))));
    z[2] = _mm512_add_pd(z[2], _mm512_cvtps_pd(_mm512_castps512_ps256(a1)));
    z[3] = _mm512_add_pd(z[3], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a1), 1))));
}

/* 16 floats from two vectors of 8 doubles */
__attribute__((target("avx512f"))) static __m512 pd2_ps(__m512d lo, __m512d hi)
{
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
                                               _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}

/* the exponentials of softmax_cols for 32 columns in registers, left
 * unnormalised in S: S[s][j] = exp(S[s][j] - max_s), inv[j] = 1 / sum_s; the
 * sums run in float over 64 rows at a time, carried in double (4 lanes of 8).
 * The normalised weights go to att (T rows of QB, contiguous: the blocked
 * layout) when given, by non-temporal stores where aligned: att (B heads T^2
 * floats) is read only by the backward, long after, so reading its lines
 * into the cache first would be wasted. */
__attribute__((target("avx512f"))) static void softmax_cols32(float *S, int T, float *att, float *inv)
{
    __m512 m0 = _mm512_loadu_ps(S), m1 = _mm512_loadu_ps(S + 16);
    for (int s = 1; s < T; s++) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(S + (size_t)s * QB));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(S + (size_t)s * QB + 16));
    }
    __m512d z[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int s0 = 0; s0 < T; s0 += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int s = s0; s < T && s < s0 + 64; s++) {
            float *r = S + (size_t)s * QB;
            __m512 e0 = glad_exp16(_mm512_sub_ps(_mm512_loadu_ps(r), m0)), e1 = glad_exp16(_mm512_sub_ps(_mm512_loadu_ps(r + 16), m1));
            _mm512_storeu_ps(r, e0);
            _mm512_storeu_ps(r + 16, e1);
            a0 = _mm512_add_ps(a0, e0);
            a1 = _mm512_add_ps(a1, e1);
        }
        add32_pd(z, a0, a1);
    }
    __m512d one = _mm512_set1_pd(1.0);
    __m512 v0 = pd2_ps(_mm512_div_pd(one, z[0]), _mm512_div_pd(one, z[1])), v1 = pd2_ps(_mm512_div_pd(one, z[2]), _mm512_div_pd(one, z[3]));
    _mm512_storeu_ps(inv, v0);
    _mm512_storeu_ps(inv + 16, v1);
    if (!att) return;
    int nt = (uintptr_t)att % 64 == 0;
    for (int s = 0; s < T; s++) {
        const float *r = S + (size_t)s * QB;
        float *o = att + (size_t)s * QB;
        __m512 w0 = _mm512_mul_ps(_mm512_loadu_ps(r), v0), w1 = _mm512_mul_ps(_mm512_loadu_ps(r + 16), v1);
        if (nt) { _mm512_stream_ps(o, w0); _mm512_stream_ps(o + 16, w1); }
        else { _mm512_storeu_ps(o, w0); _mm512_storeu_ps(o + 16, w1); }
    }
    if (nt) _mm_sfence();   /* the streamed rows are visible before the team's barrier */
}

/* out[c][j] *= inv[j] for c rows (T apart) of 32 columns */
__attribute__((target("avx512f"))) static void scale_cols32(float *out, int c, int T, const float *inv)
{
    __m512 v0 = _mm512_loadu_ps(inv), v1 = _mm512_loadu_ps(inv + 16);
    for (int i = 0; i < c; i++) {
        float *r = out + (size_t)i * T;
        _mm512_storeu_ps(r, _mm512_mul_ps(_mm512_loadu_ps(r), v0));
        _mm512_storeu_ps(r + 16, _mm512_mul_ps(_mm512_loadu_ps(r + 16), v1));
    }
}

/* one block of nb queries from t0 of one head: S (T x ld) scratch, ld =
 * min(QB, T) (QB on the fast path); att is the pair's */
static void head_block(float *out, float *att, const float *q, const float *k, const float *v, int c, int T, int t0, int nb,
                       int ld, float s2, int fast, float *S)
{
    /* St[s][j] = s2 sum_c k[c][s] q[c][t0 + j] */
    if (fast)
        for (int s0 = 0; s0 < T; s0 += 8) glad_tile8x32(S + (size_t)s0 * QB, QB, k + s0, (size_t)T, 1, q + t0, (size_t)T, c, s2, NULL, 0);
    else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, nb, c, s2, k, T, q + t0, T, 0.0f, S, ld);
    float inv[QB];
    if (fast) softmax_cols32(S, T, att ? att + (size_t)t0 * T : NULL, inv);
    else softmax_cols(S, T, nb, ld);
    /* a[c][t0 + j] = sum_s v[c][s] St[s][j], on the fast path of the
     * unnormalised St, then scaled by 1 / sum (one pass over c x 32 outputs
     * instead of one over T x 32 weights) */
    if (fast) {
        for (int c0 = 0; c0 < c; c0 += 8) glad_tile8x32(out + (size_t)c0 * T + t0, (size_t)T, v + (size_t)c0 * T, 1, (size_t)T, S, QB, T, 1.0f, NULL, 0);
        scale_cols32(out + t0, c, T, inv);
    } else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, nb, T, 1.0f, v, T, S, ld, 0.0f, out + t0, T);
    if (att && !fast) {
        if (blocked(T)) memcpy(att + (size_t)t0 * T, S, sizeof(float) * (size_t)T * QB);   /* ld = nb = QB here */
        else
            for (int s = 0; s < T; s++) memcpy(att + (size_t)s * T + t0, S + (size_t)s * ld, sizeof(float) * (size_t)nb);
    }
}

/* ------------------------------------------------------------ bf16 forward
 * Per (batch, head) pair, K^T (T x c), V (c x T) and Q (c x T) are rounded
 * to bf16 once (K^T rows and V rows as the tile's broadcast operand, Q as
 * pair rows of channels (2i, 2i+1)); then per block of QB queries, each on
 * one thread with its own scratch (St, T x QB floats, and P, T/2 pair rows
 * of QB, bf16):
 *   St[s][j] = sum_c k[c][s] q[c][t0+j]   (bf16 operands, fp32 sums; the
 *              column maxima m[j] taken in the tile's epilogue)
 *   E[s][j]  = 2^(g St[s][j] - g m[j]),  g = s2 log2(e)   (one FMA; fp32,
 *              then to bf16 pairs of keys (s, s+1) in P, the B operand of
 *              the next product)
 *   out[c][t0+j] = (sum_s v[c][s] E[s][j]) / sum_s E[s][j]
 * the sums of E in fp32, the division in the last tile's epilogue. 2^x is
 * exp2_coarse's (2.7e-6 relative, under bf16's 2^-9 rounding of E by 700x);
 * log2(e) folded into the logits' scale saves the exp's multiply. In a
 * training forward St keeps E, normalised into att afterwards (the fp32
 * backward differentiates these weights). A block's result does not depend
 * on the thread count. */

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* the 32 bf16 of a (16 floats) and b (16 floats) interleaved: a0 b0 a1 b1 ... */
BF16_TARGET static inline __m512i pairs16(__m512 a, __m512 b)
{
    static const uint16_t ix[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(ix), (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* 2^x for x <= 0 on 16 lanes: 2^x = 2^k 2^f, k = round(x), |f| <= 1/2, 2^f
 * by glad_silu16_coarse's degree-4 polynomial (least maximum relative error,
 * 2.7e-6), 2^k by vscalefps (which underflows to 0 for any k < -149, so no
 * clamp is needed below; x - max is never above 0) */
__attribute__((target("avx512f"))) static inline __m512 exp2_coarse(__m512 x)
{
    __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(x, k);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.009570102207362652f), f, _mm512_set1_ps(0.05591786280274391f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.240247443318367f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931217908859253f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999992847442627f));
    return _mm512_scalef_ps(p, k);
}

static inline uint32_t pair_at(const uint16_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
    return v;
}

/* c0, c1 (8 rows of 32 columns) = sum over P pairs of a (8 rows of bf16,
 * lda apart) times b (P pair rows of 32, ldb bf16 apart): the 8 x 32 tile
 * of vdpbf16ps, two products per 32-bit lane (bf16.c's) */
#define TILE_BF16(c0, c1, a, lda, b, ldb, P)                                                                                          \
    do {                                                                                                                            \
        for (int o = 0; o < 8; o++) { c0[o] = _mm512_setzero_ps(); c1[o] = _mm512_setzero_ps(); }                                   \
        for (int p = 0; p < (P); p++) {                                                                                             \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512((b) + (size_t)p * (ldb));                                                   \
            __m512bh b1 = (__m512bh)_mm512_loadu_si512((b) + (size_t)p * (ldb) + 32);                                              \
            for (int o = 0; o < 8; o++) {                                                                                           \
                __m512bh w = (__m512bh)_mm512_set1_epi32((int)pair_at((a) + (size_t)o * (lda) + 2 * p));                           \
                c0[o] = _mm512_dpbf16_ps(c0[o], w, b0);                                                                             \
                c1[o] = _mm512_dpbf16_ps(c1[o], w, b1);                                                                             \
            }                                                                                                                       \
        }                                                                                                                           \
    } while (0)

/* St (T x QB) = K^T Q_blk (kt T rows of c bf16; qb c/2 pair rows of QB,
 * ldq apart), the column maxima to mx[0..1] (kept in registers) */
BF16_TARGET __attribute__((noinline)) static void qk_block(float *St, const uint16_t *kt, const uint16_t *qb, size_t ldq, int c, int T,
                                                           __m512 *mx)
{
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, c0[8], c1[8];
    for (int s0 = 0; s0 < T; s0 += 8) {
        const uint16_t *a = kt + (size_t)s0 * c;
        TILE_BF16(c0, c1, a, (size_t)c, qb, ldq, c / 2);
        float *r = St + (size_t)s0 * QB;
        for (int o = 0; o < 8; o++, r += QB) {
            _mm512_storeu_ps(r, c0[o]);
            _mm512_storeu_ps(r + 16, c1[o]);
            m0 = _mm512_max_ps(m0, c0[o]);
            m1 = _mm512_max_ps(m1, c1[o]);
        }
    }
    mx[0] = m0;
    mx[1] = m1;
}

/* out (c x QB, rows T apart) = (V P) scaled by column, v0 | v1 (vp c rows
 * of T bf16; P T/2 pair rows of QB) */
BF16_TARGET __attribute__((noinline)) static void pv_block(float *out, const uint16_t *vp, const uint16_t *P, int c, int T, __m512 v0,
                                                           __m512 v1)
{
    __m512 c0[8], c1[8];
    for (int i0 = 0; i0 < c; i0 += 8) {
        const uint16_t *a = vp + (size_t)i0 * T;
        TILE_BF16(c0, c1, a, (size_t)T, P, 2 * QB, T / 2);
        for (int o = 0; o < 8; o++) {
            float *r = out + (size_t)(i0 + o) * T;
            _mm512_storeu_ps(r, _mm512_mul_ps(c0[o], v0));
            _mm512_storeu_ps(r + 16, _mm512_mul_ps(c1[o], v1));
        }
    }
}

/* one block of QB queries from t0 (pair's packed kt, vp, qp; St, P scratch) */
BF16_TARGET static void block_bf16(float *out, float *att, const uint16_t *kt, const uint16_t *vp, const uint16_t *qp, int c, int T,
                                   int t0, float scale, float *St, uint16_t *P)
{
    __m512 mx[2];
    qk_block(St, kt, qp + 2 * (size_t)t0, 2 * (size_t)T, c, T, mx);
    /* the exponent scale St - scale max (scale > 0: the maximum of the scaled logits) by one FMA */
    __m512 sc = _mm512_set1_ps(scale), n0 = _mm512_mul_ps(mx[0], sc), n1 = _mm512_mul_ps(mx[1], sc);
    /* E, its bf16 pairs and column sums: float over 64 rows, carried in double */
    __m512d z[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int s0 = 0; s0 < T; s0 += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int s = s0; s < T && s < s0 + 64; s += 2) {
            float *r = St + (size_t)s * QB;
            __m512 e0 = exp2_coarse(_mm512_fmsub_ps(_mm512_loadu_ps(r), sc, n0));
            __m512 e1 = exp2_coarse(_mm512_fmsub_ps(_mm512_loadu_ps(r + 16), sc, n1));
            __m512 f0 = exp2_coarse(_mm512_fmsub_ps(_mm512_loadu_ps(r + QB), sc, n0));
            __m512 f1 = exp2_coarse(_mm512_fmsub_ps(_mm512_loadu_ps(r + QB + 16), sc, n1));
            a0 = _mm512_add_ps(a0, _mm512_add_ps(e0, f0));
            a1 = _mm512_add_ps(a1, _mm512_add_ps(e1, f1));
            uint16_t *d = P + (size_t)s * QB;   /* pair row s / 2: 2 QB bf16 */
            _mm512_storeu_si512(d, pairs16(e0, f0));
            _mm512_storeu_si512(d + 32, pairs16(e1, f1));
            if (att) {
                _mm512_storeu_ps(r, e0); _mm512_storeu_ps(r + 16, e1);
                _mm512_storeu_ps(r + QB, f0); _mm512_storeu_ps(r + QB + 16, f1);
            }
        }
        add32_pd(z, a0, a1);
    }
    __m512d one = _mm512_set1_pd(1.0);
    __m512 v0 = pd2_ps(_mm512_div_pd(one, z[0]), _mm512_div_pd(one, z[1])), v1 = pd2_ps(_mm512_div_pd(one, z[2]), _mm512_div_pd(one, z[3]));
    pv_block(out + t0, vp, P, c, T, v0, v1);
    if (!att) return;
    /* the normalised weights (blocked layout), streamed as softmax_cols32's */
    float *o = att + (size_t)t0 * T;
    int nt = (uintptr_t)o % 64 == 0;
    for (int s = 0; s < T; s++, o += QB) {
        const float *r = St + (size_t)s * QB;
        __m512 w0 = _mm512_mul_ps(_mm512_loadu_ps(r), v0), w1 = _mm512_mul_ps(_mm512_loadu_ps(r + 16), v1);
        if (nt) { _mm512_stream_ps(o, w0); _mm512_stream_ps(o + 16, w1); }
        else { _mm512_storeu_ps(o, w0); _mm512_storeu_ps(o + 16, w1); }
    }
    if (nt) _mm_sfence();   /* the streamed rows are visible before the team's barrier */
}

/* kt (T x c bf16) = k (c x T) transposed and rounded, 16 x 16 blocks in
 * registers (c % 16 == 0; else one by one) */
BF16_TARGET static void pack_kt(uint16_t *kt, const float *k, int c, int T)
{
    if (c % 16) {
        for (int s = 0; s < T; s++)
            for (int i = 0; i < c; i++) kt[(size_t)s * c + i] = glad_bf16_from_f32(k[(size_t)i * T + s]);
        return;
    }
    __m512 r[16];
    for (int i0 = 0; i0 < c; i0 += 16)
        for (int s0 = 0; s0 < T; s0 += 16) {
            for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(k + (size_t)(i0 + j) * T + s0);
            glad_transpose16(r);
            for (int j = 0; j < 16; j++)
                _mm256_storeu_si256((__m256i *)(kt + (size_t)(s0 + j) * c + i0), (__m256i)_mm512_cvtneps_pbh(r[j]));
        }
}

/* bytes of the packed K^T, V, Q of one pair (each m bf16), and of one thread's St and P */
static size_t up64(size_t bytes) { return (bytes + 63) / 64 * 64; }
static size_t pack_bytes(int c, int T) { return 3 * up64(2 * (size_t)T * c); }
static size_t blk_bytes(int T) { return up64(4 * (size_t)T * QB) + up64(2 * (size_t)T * QB); }

/* the forward in bf16 (T % QB == 0, c % 8 == 0): every pair's packings,
 * then the (pair, query block) tasks over the threads, each thread with its
 * own St and P. The scratch is allocated (ws may be smaller than T^2 floats:
 * sdunet.c sizes it for the f32 path's blocks); 0, or GLAD_ENOMEM (nothing
 * written) */
static int forward_bf16(float *out, float *att, const float *qkv, int B, int C, int T, int heads)
{
    int c = C / heads, pairs = B * heads, nqb = T / QB, tasks = pairs * nqb, nth = omp_get_max_threads();
    float scale = 1.4426950408889634f / sqrtf((float)c);   /* log2(e) c^-1/2 */
    if (nth > tasks) nth = tasks;
    size_t pb = pack_bytes(c, T), m = up64(2 * (size_t)T * c) / 2;
    char *buf = aligned_alloc(64, pb * (size_t)pairs + blk_bytes(T) * (size_t)nth);
    if (!buf) return GLAD_ENOMEM;
    // pairs' packings, then (pair, query block) tasks writing disjoint columns of out and att, each thread in its own scratch
    #pragma omp parallel num_threads(nth) if (nth > 1)
    {
        char *scr = buf + pb * (size_t)pairs + blk_bytes(T) * (size_t)omp_get_thread_num();
        float *St = (float *)scr;
        uint16_t *P = (uint16_t *)(scr + up64(4 * (size_t)T * QB));
        #pragma omp for schedule(static)
        for (int j = 0; j < 3 * pairs; j++) {
            int p = j / 3, b = p / heads, h = p % heads;
            const float *q = qkv + ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
            uint16_t *kt = (uint16_t *)(buf + pb * (size_t)p);
            if (j % 3 == 0) pack_kt(kt, q + (size_t)c * T, c, T);
            else if (j % 3 == 1) glad_bf16_pack_a(kt + m, q + (size_t)2 * c * T, (size_t)T, c, T);
            else glad_bf16_pack_b(kt + 2 * m, q, (size_t)T, 0, c, T);
        }
        #pragma omp for schedule(static)
        for (int i = 0; i < tasks; i++) {
            int p = i / nqb, b = p / heads, h = p % heads;
            const uint16_t *kt = (const uint16_t *)(buf + pb * (size_t)p);
            block_bf16(out + ((size_t)b * C + (size_t)h * c) * T, att ? att + (size_t)p * T * T : NULL, kt, kt + m, kt + 2 * m, c, T,
                       (i % nqb) * QB, scale, St, P);
        }
    }
    free(buf);
    return 0;
}

/* task i: (batch, head) i / nqb, query block i % nqb */
static void forward_task(float *out, float *att, const float *qkv, int C, int T, int heads, int c, int nqb, int ld, float s2,
                         int fast, int i, float *S)
{
    int p = i / nqb, b = p / heads, h = p % heads, t0 = (i % nqb) * ld, nb = T - t0 < ld ? T - t0 : ld;
    const float *q = qkv + ((size_t)b * 3 * C + (size_t)h * 3 * c) * T, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
    head_block(out + ((size_t)b * C + (size_t)h * c) * T, att ? att + (size_t)p * T * T : NULL, q, k, v, c, T, t0, nb, ld, s2,
               fast, S);
}

// qkv is (B,3C,T), out is (B,C,T), att (B*heads,T,T) or NULL; ws: T*T floats
void glad_attention_forward(float *out, float *att, const float *qkv, int B, int C, int T, int heads, float *ws)
{
    if (glad_precision_get() == GLAD_PREC_BF16 && T % QB == 0 && (C / heads) % 8 == 0 && forward_bf16(out, att, qkv, B, C, T, heads) == 0)
        return;
    int c = C / heads, ld = T < QB ? T : QB, nqb = (T + ld - 1) / ld, tasks = B * heads * nqb;
    int fast = glad_nn_avx512() && T % QB == 0 && c % 8 == 0;
    float s2 = 1.0f / sqrtf((float)c);
    /* ws holds T / ld block scratches of T x ld: at most that many threads */
    int nth = omp_get_max_threads(), slots = T / ld;
    if (nth > slots) nth = slots;
    if (nth > tasks) nth = tasks;
    /* one thread runs outside any team: an sgemm of the portable path called
     * inside even a one-thread region would open a nested team of new threads */
    if (nth < 2) {
        for (int i = 0; i < tasks; i++) forward_task(out, att, qkv, C, T, heads, c, nqb, ld, s2, fast, i, ws);
        return;
    }
    // (batch, head, query block) triples write disjoint columns of out and att
    // (each sgemm of the portable path runs single-threaded inside the team)
    #pragma omp parallel num_threads(nth)
    {
        float *S = ws + (size_t)omp_get_thread_num() * T * ld;
        #pragma omp for schedule(static)
        for (int i = 0; i < tasks; i++) forward_task(out, att, qkv, C, T, heads, c, nqb, ld, s2, fast, i, S);
    }
}

/* G := Wt (G - sum_s Wt G) down the 32 columns: the softmax backward of a
 * query block (wt its T x QB weights, blocked; G rows QB), the column sums in
 * float over 64 rows at a time, carried in double */
__attribute__((target("avx512f"))) static void softmax_back_cols32(float *G, const float *wt, int T)
{
    __m512d z[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int s0 = 0; s0 < T; s0 += 64) {   /* float over 64 rows, carried in double (as softmax_cols32) */
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int s = s0; s < T && s < s0 + 64; s++) {
            const float *g = G + (size_t)s * QB, *w = wt + (size_t)s * QB;
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(g), _mm512_loadu_ps(w), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(g + 16), _mm512_loadu_ps(w + 16), a1);
        }
        add32_pd(z, a0, a1);
    }
    __m512 d0 = pd2_ps(z[0], z[1]), d1 = pd2_ps(z[2], z[3]);
    for (int s = 0; s < T; s++) {
        float *g = G + (size_t)s * QB;
        const float *w = wt + (size_t)s * QB;
        _mm512_storeu_ps(g, _mm512_mul_ps(_mm512_loadu_ps(w), _mm512_sub_ps(_mm512_loadu_ps(g), d0)));
        _mm512_storeu_ps(g + 16, _mm512_mul_ps(_mm512_loadu_ps(w + 16), _mm512_sub_ps(_mm512_loadu_ps(g + 16), d1)));
    }
}

/* one (batch, head) on the fast path, query block by query block (so dK and
 * dV sum the blocks in order); G is 3 T x QB scratch:
 *   dWt = V^T dA_blk, dLt = softmax backward, dQ_blk += s2 K dLt,
 *   dK += s2 Q_blk dLt^T, dV += dA_blk Wt_blk^T
 * all as register tiles. With kv (2 T c floats, c % 32 == 0) the last two
 * are summed transposed, dK^T += s2 dLt Q_blk^T and dV^T += Wt_blk dA_blk^T,
 * whose right factors are 32 x c transposes of the block (instead of T x 32
 * ones of dLt and Wt_blk per block), and added to dK, dV once at the end.
 * wt is the pair's weights, blocked: Wt_blk (T x QB) at wt + t0 T */
static void head_backward(float *dq, float *dk, float *dv, const float *da, const float *q, const float *k, const float *v,
                          const float *wt, int c, int T, float s2, float *G, float *kv)
{
    float *Gt = G + (size_t)T * QB, *Wb = Gt + (size_t)T * QB;
    float *dkt = kv, *dvt = kv ? kv + (size_t)T * c : NULL;
    if (kv) memset(kv, 0, sizeof(float) * 2 * (size_t)T * c);
    for (int t0 = 0; t0 < T; t0 += QB) {
        const float *wb = wt + (size_t)t0 * T;
        for (int s0 = 0; s0 < T; s0 += 8) glad_tile8x32(G + (size_t)s0 * QB, QB, v + s0, (size_t)T, 1, da + t0, (size_t)T, c, 1.0f, NULL, 0);
        softmax_back_cols32(G, wb, T);
        for (int c0 = 0; c0 < c; c0 += 8)
            glad_tile8x32(dq + (size_t)c0 * T + t0, (size_t)T, k + (size_t)c0 * T, 1, (size_t)T, G, QB, T, s2, NULL, 1);
        if (kv) {
            /* Gt, Wb hold Q_blk^T and dA_blk^T (QB x c) here */
            glad_transpose_t32(Gt, (size_t)c, q + t0, (size_t)T, c);
            glad_transpose_t32(Wb, (size_t)c, da + t0, (size_t)T, c);
            for (int s0 = 0; s0 < T; s0 += 8)
                for (int c0 = 0; c0 < c; c0 += 32) {
                    glad_tile8x32(dkt + (size_t)s0 * c + c0, (size_t)c, G + (size_t)s0 * QB, 1, QB, Gt + c0, (size_t)c, QB, s2, NULL, 1);
                    glad_tile8x32(dvt + (size_t)s0 * c + c0, (size_t)c, wb + (size_t)s0 * QB, 1, QB, Wb + c0, (size_t)c, QB, 1.0f, NULL, 1);
                }
            continue;
        }
        glad_transpose_t32(Gt, (size_t)T, G, QB, T);
        glad_transpose_t32(Wb, (size_t)T, wb, QB, T);
        for (int c0 = 0; c0 < c; c0 += 8)
            for (int s0 = 0; s0 < T; s0 += 32) {
                glad_tile8x32(dk + (size_t)c0 * T + s0, (size_t)T, q + (size_t)c0 * T + t0, 1, (size_t)T, Gt + s0, (size_t)T, QB, s2,
                              NULL, 1);
                glad_tile8x32(dv + (size_t)c0 * T + s0, (size_t)T, da + (size_t)c0 * T + t0, 1, (size_t)T, Wb + s0, (size_t)T, QB,
                              1.0f, NULL, 1);
            }
    }
    if (kv)
        for (int cc = 0; cc < c; cc++)
            for (int s = 0; s < T; s++) {
                dk[(size_t)cc * T + s] += dkt[(size_t)s * c + cc];
                dv[(size_t)cc * T + s] += dvt[(size_t)s * c + cc];
            }
}

/* (batch, head) p of the fast path */
static void backward_pair(float *dqkv, const float *dout, const float *qkv, const float *att, int C, int T, int heads, int c,
                          float s2, int p, float *G, float *kv)
{
    int b = p / heads, h = p % heads;
    size_t off = ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
    float *dq = dqkv + off;
    head_backward(dq, dq + (size_t)c * T, dq + (size_t)2 * c * T, dout + ((size_t)b * C + (size_t)h * c) * T, qkv + off,
                  qkv + off + (size_t)c * T, qkv + off + (size_t)2 * c * T, att + (size_t)p * T * T, c, T, s2, G, kv);
}

/* ------------------------------------------------------------ bf16 backward
 * Mixed-precision training (T % QB == 0, c % 8 == 0): head_backward's steps
 * with every product on bf16 operands and fp32 sums, per query block of QB:
 *   G   = V^T dA_blk (T x QB), with D[j] = sum_s W[s][j] G[s][j] in its tile
 *   dL  = W (G - D)                                     (fp32)
 *   dQ_blk += s2 K dL,  dK^T += s2 dL Q_blk^T,  dV^T += W dA_blk^T
 * dL and W rounded to bf16 twice over: as pair rows of keys (s, s+1), dQ's
 * right operand, and row by row, the left operand of dK^T and dV^T (whose
 * right operands, Q^T and dA^T as pair rows of queries, are packed once per
 * pair). dK^T and dV^T (T x cp, cp = c up to 32: the packing's zero columns
 * add zeros) are summed over the blocks in order and added to dK, dV at the
 * end. One (batch, head) per thread, so results do not depend on the thread
 * count. */

enum { PF_ROWS = 32 };   /* dw_block's prefetch distance, 4 KB */

/* C (8 x 32, rows ldc apart) += alpha (a b), the tile over P pairs */
BF16_TARGET __attribute__((noinline)) static void tile_add(float *C, size_t ldc, const uint16_t *a, size_t lda, const uint16_t *b,
                                                           size_t ldb, int P, float alpha)
{
    __m512 c0[8], c1[8], al = _mm512_set1_ps(alpha);
    TILE_BF16(c0, c1, a, lda, b, ldb, P);
    for (int o = 0; o < 8; o++) {
        float *r = C + (size_t)o * ldc;
        _mm512_storeu_ps(r, _mm512_fmadd_ps(c0[o], al, _mm512_loadu_ps(r)));
        _mm512_storeu_ps(r + 16, _mm512_fmadd_ps(c1[o], al, _mm512_loadu_ps(r + 16)));
    }
}

/* G (T x QB) = V^T dA_blk (vt T rows of c bf16; dap c/2 pair rows of QB,
 * ldd apart) and d[0..1] = sum_s W[s][j] G[s][j] (wt the block's weights,
 * T x QB), float over 64 rows, carried in double (as softmax_back_cols32) */
BF16_TARGET __attribute__((noinline)) static void dw_block(float *G, __m512 *d, const uint16_t *vt, const uint16_t *dap, size_t ldd,
                                                           const float *wt, int c, int T)
{
    __m512d z[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), c0[8], c1[8];
    for (int s0 = 0; s0 < T; s0 += 8) {
        const uint16_t *a = vt + (size_t)s0 * c;
        TILE_BF16(c0, c1, a, (size_t)c, dap, ldd, c / 2);
        float *r = G + (size_t)s0 * QB;
        const float *w = wt + (size_t)s0 * QB;
        /* the weights come from memory (the forward streamed them out long
         * before): their rows PF_ROWS ahead requested now (measured on
         * B 4, 1024 tokens: 5.7 -> 4.4 ms; 64 and 128 rows ahead 4.5..4.7) */
        for (int l = 0; l < 16; l++) _mm_prefetch((const char *)(w + PF_ROWS * QB) + 64 * l, _MM_HINT_T0);
        for (int o = 0; o < 8; o++, r += QB, w += QB) {
            _mm512_storeu_ps(r, c0[o]);
            _mm512_storeu_ps(r + 16, c1[o]);
            a0 = _mm512_fmadd_ps(c0[o], _mm512_loadu_ps(w), a0);
            a1 = _mm512_fmadd_ps(c1[o], _mm512_loadu_ps(w + 16), a1);
        }
        if ((s0 + 8) % 64 == 0 || s0 + 8 == T) {
            add32_pd(z, a0, a1);
            a0 = a1 = _mm512_setzero_ps();
        }
    }
    d[0] = pd2_ps(z[0], z[1]);
    d[1] = pd2_ps(z[2], z[3]);
}

/* one (batch, head) in bf16; scr: bwd_bytes(c, T) bytes, 64-byte aligned */
static size_t cpad(int c) { return (size_t)(c + 31) / 32 * 32; }
static size_t bwd_bytes(int c, int T)
{
    return 3 * up64(2 * (size_t)T * c) + 2 * up64(2 * (size_t)T * cpad(c)) + up64(4 * (size_t)T * QB) + 3 * up64(2 * (size_t)T * QB) +
           2 * up64(4 * (size_t)T * cpad(c));
}
BF16_TARGET static void pair_backward_bf16(float *dq, float *dk, float *dv, const float *da, const float *q, const float *k,
                                           const float *v, const float *wt, int c, int T, float s2, char *scr)
{
    size_t cp = cpad(c);
    uint16_t *vt = (uint16_t *)scr, *kp = vt + up64(2 * (size_t)T * c) / 2, *dap = kp + up64(2 * (size_t)T * c) / 2;
    uint16_t *qt = dap + up64(2 * (size_t)T * c) / 2, *dat = qt + up64(2 * (size_t)T * cp) / 2;
    float *G = (float *)(dat + up64(2 * (size_t)T * cp) / 2);
    uint16_t *lp = (uint16_t *)(G + (size_t)T * QB), *lr = lp + (size_t)T * QB, *wr = lr + (size_t)T * QB;
    float *dkt = (float *)(wr + (size_t)T * QB), *dvt = dkt + (size_t)T * cp;
    pack_kt(vt, v, c, T);
    glad_bf16_pack_a(kp, k, (size_t)T, c, T);
    glad_bf16_pack_b(dap, da, (size_t)T, 0, c, T);
    glad_bf16_pack_b(qt, q, (size_t)T, 1, T, c);   /* pair row p: (q[i][2p], q[i][2p+1]) for i < cp */
    glad_bf16_pack_b(dat, da, (size_t)T, 1, T, c);
    memset(dkt, 0, sizeof(float) * 2 * (size_t)T * cp);
    for (int t0 = 0; t0 < T; t0 += QB) {
        const float *wb = wt + (size_t)t0 * T;
        __m512 d[2];
        dw_block(G, d, vt, dap + 2 * (size_t)t0, 2 * (size_t)T, wb, c, T);
        for (int s = 0; s < T; s += 2) {
            const float *g = G + (size_t)s * QB, *w = wb + (size_t)s * QB;
            __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16), x0 = _mm512_loadu_ps(w + QB), x1 = _mm512_loadu_ps(w + QB + 16);
            __m512 l0 = _mm512_mul_ps(w0, _mm512_sub_ps(_mm512_loadu_ps(g), d[0]));
            __m512 l1 = _mm512_mul_ps(w1, _mm512_sub_ps(_mm512_loadu_ps(g + 16), d[1]));
            __m512 m0 = _mm512_mul_ps(x0, _mm512_sub_ps(_mm512_loadu_ps(g + QB), d[0]));
            __m512 m1 = _mm512_mul_ps(x1, _mm512_sub_ps(_mm512_loadu_ps(g + QB + 16), d[1]));
            _mm512_storeu_si512(lp + (size_t)s * QB, pairs16(l0, m0));
            _mm512_storeu_si512(lp + (size_t)s * QB + 32, pairs16(l1, m1));
            _mm512_storeu_si512(lr + (size_t)s * QB, (__m512i)_mm512_cvtne2ps_pbh(l1, l0));
            _mm512_storeu_si512(lr + (size_t)(s + 1) * QB, (__m512i)_mm512_cvtne2ps_pbh(m1, m0));
            _mm512_storeu_si512(wr + (size_t)s * QB, (__m512i)_mm512_cvtne2ps_pbh(w1, w0));
            _mm512_storeu_si512(wr + (size_t)(s + 1) * QB, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
        }
        for (int i0 = 0; i0 < c; i0 += 8) tile_add(dq + (size_t)i0 * T + t0, (size_t)T, kp + (size_t)i0 * T, (size_t)T, lp, 2 * QB, T / 2, s2);
        /* Q_blk^T, dA_blk^T: pair rows t0 / 2 on, 2 cp bf16 each */
        const uint16_t *qb = qt + (size_t)t0 * cp, *db = dat + (size_t)t0 * cp;
        for (int s0 = 0; s0 < T; s0 += 8)
            for (size_t i0 = 0; i0 < cp; i0 += 32) {
                tile_add(dkt + (size_t)s0 * cp + i0, cp, lr + (size_t)s0 * QB, QB, qb + 2 * i0, 2 * cp, QB / 2, s2);
                tile_add(dvt + (size_t)s0 * cp + i0, cp, wr + (size_t)s0 * QB, QB, db + 2 * i0, 2 * cp, QB / 2, 1.0f);
            }
    }
    /* dK += dK^T^T, dV += dV^T^T: 16 x 16 blocks transposed in registers
     * (c % 16 == 0; else one by one) */
    if (c % 16) {
        for (int i = 0; i < c; i++)
            for (int s = 0; s < T; s++) {
                dk[(size_t)i * T + s] += dkt[(size_t)s * cp + i];
                dv[(size_t)i * T + s] += dvt[(size_t)s * cp + i];
            }
        return;
    }
    for (int m = 0; m < 2; m++) {
        float *d = m ? dv : dk;
        const float *x = m ? dvt : dkt;
        __m512 r[16];
        for (int s0 = 0; s0 < T; s0 += 16)
            for (int i0 = 0; i0 < c; i0 += 16) {
                for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(x + (size_t)(s0 + j) * cp + i0);
                glad_transpose16(r);
                for (int j = 0; j < 16; j++) {
                    float *o = d + (size_t)(i0 + j) * T + s0;
                    _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), r[j]));
                }
            }
    }
}

/* the backward in bf16, (batch, head) pairs over the threads; 0, or
 * GLAD_ENOMEM (nothing written) without the scratch */
static int backward_bf16(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int C, int T, int heads)
{
    int c = C / heads, pairs = B * heads, nth = omp_get_max_threads();
    float s2 = 1.0f / sqrtf((float)c);
    if (nth > pairs) nth = pairs;
    size_t per = bwd_bytes(c, T);
    char *buf = aligned_alloc(64, per * (size_t)nth);
    if (!buf) return GLAD_ENOMEM;
    // (batch, head) pairs write disjoint rows of dqkv; each thread has its own scratch
    #pragma omp parallel num_threads(nth) if (nth > 1)
    {
        char *scr = buf + per * (size_t)omp_get_thread_num();
        #pragma omp for schedule(static)
        for (int p = 0; p < pairs; p++) {
            int b = p / heads, h = p % heads;
            size_t off = ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
            float *dq = dqkv + off;
            const float *q = qkv + off;
            pair_backward_bf16(dq, dq + (size_t)c * T, dq + (size_t)2 * c * T, dout + ((size_t)b * C + (size_t)h * c) * T, q,
                               q + (size_t)c * T, q + (size_t)2 * c * T, att + (size_t)p * T * T, c, T, s2, scr);
        }
    }
    free(buf);
    return 0;
}

// dout is (B,C,T); dqkv (B,3C,T) accumulates; att as the forward left it
void glad_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int C, int T,
                             int heads, float *ws)
{
    int c = C / heads, pairs = B * heads;
    float s2 = 1.0f / sqrtf((float)c);
    if (glad_precision_get() == GLAD_PREC_BF16 && T % QB == 0 && c % 8 == 0 && backward_bf16(dqkv, dout, qkv, att, B, C, T, heads) == 0)
        return;
    if (glad_nn_avx512() && T % QB == 0 && c % 8 == 0) {
        /* one thread per (batch, head), each with a 3 T x QB scratch of ws */
        int nth = omp_get_max_threads(), slots = T / QB;
        if (nth > slots) nth = slots;
        if (nth > pairs) nth = pairs;
        /* the transposed dK, dV sums need c % 32, c <= T and 2 T c floats per thread
         * (without them, the per-block transposes) */
        int tr = c % 32 == 0 && c <= T;
        if (nth < 2) {   /* outside any team, as in the forward */
            float *kv = tr ? malloc(sizeof(float) * 2 * (size_t)T * c) : NULL;
            for (int p = 0; p < pairs; p++) backward_pair(dqkv, dout, qkv, att, C, T, heads, c, s2, p, ws, kv);
            free(kv);
            return;
        }
        // (batch, head) pairs write disjoint rows of dqkv; each thread has its own scratch
        #pragma omp parallel num_threads(nth)
        {
            float *G = ws + (size_t)omp_get_thread_num() * 3 * T * QB, *kv = tr ? malloc(sizeof(float) * 2 * (size_t)T * c) : NULL;
            #pragma omp for schedule(static)
            for (int p = 0; p < pairs; p++) backward_pair(dqkv, dout, qkv, att, C, T, heads, c, s2, p, G, kv);
            free(kv);
        }
        return;
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++) {
            size_t off = ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
            const float *q = qkv + off, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
            float *dq = dqkv + off, *dk = dq + (size_t)c * T, *dv = dk + (size_t)c * T;
            const float *wt = att + ((size_t)b * heads + h) * T * T, *da = dout + ((size_t)b * C + (size_t)h * c) * T;
            if (blocked(T)) {   /* (c % 8 != 0) the weights row-major into ws' second T x T */
                float *rm = ws + (size_t)T * T;
                for (int t0 = 0; t0 < T; t0 += QB)
                    for (int s = 0; s < T; s++)
                        memcpy(rm + (size_t)s * T + t0, wt + (size_t)t0 * T + (size_t)s * QB, sizeof(float) * QB);
                wt = rm;
            }
            /* dV (c,T) += dA (c,T) W = dA Wt^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, T, T, 1.0f, da, T, wt, T, 1.0f, dv, T);
            /* dWt (T,T) = V^T dA */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, T, c, 1.0f, v, T, da, T, 0.0f, ws, T);
            /* softmax backward down each column t: dLt = Wt (dWt - sum_s Wt dWt) */
            int nch = (T + 255) / 256;
            // column chunks are independent
            #pragma omp parallel for schedule(static) if ((long)T * T > 16384)
            for (int ch = 0; ch < nch; ch++) {
                int j0 = ch * 256, nj = T - j0 < 256 ? T - j0 : 256;
                double dot[256];
                for (int j = 0; j < nj; j++) dot[j] = 0;
                for (int s = 0; s < T; s++) {
                    const float *r = ws + (size_t)s * T + j0, *wr = wt + (size_t)s * T + j0;
                    #pragma omp simd
                    for (int j = 0; j < nj; j++) dot[j] += (double)r[j] * wr[j];
                }
                for (int s = 0; s < T; s++) {
                    float *r = ws + (size_t)s * T + j0;
                    const float *wr = wt + (size_t)s * T + j0;
                    #pragma omp simd
                    for (int j = 0; j < nj; j++) r[j] = wr[j] * (r[j] - (float)dot[j]);
                }
            }
            /* dQ (c,T) += s2 K dLt ; dK (c,T) += s2 Q dLt^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, T, T, s2, k, T, ws, T, 1.0f, dq, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, T, T, s2, q, T, ws, T, 1.0f, dk, T);
        }
}
