/* test_bf16.c - the bf16 precision of lib/nn/bf16.h: round-to-nearest-even
 * conversion, the bf16 GEMM of the 1x1 convolution against a double
 * reference on the bf16-rounded operands, the Winograd twins (bf16 in the
 * transform domain) against a double direct convolution, the F(2x2) twin's
 * bf16 input transform bit for bit the fp32 one rounded, conv3x3.c's banded
 * forward bit for bit the whole-plane one (f32 and bf16), the f32 path left
 * bit-identical, and the DDAD UNet fixture in bf16 (with its bf16 weight
 * cache: reused, and rebuilt when the weights change). Stated tolerances:
 *   1x1 / GEMM: |err| <= 4e-6 sum_k |w x| (fp32 accumulation only: the
 *     operands are the reference's, rounded alike)
 *   3x3 Winograd (bf16 always in F(2x2,3x3)'s domain, also on the planes
 *     f32 runs in F(4x4,3x3)): max |err| <= TOL_W22 of max |out| (bf16
 *     rounding of the transformed input and weights)
 *   attention (legacy QKV, attention.c) against double on the unrounded
 *     inputs: output max |err| <= TOL_ATT of max |out|, gradients max |err|
 *     <= TOL_ATT_GRAD of max |grad|
 *   UNet ddad-unet-rgb forward (attention products in bf16 too): max |err| <= TOL_UNET of max |eps|
 *   ViT dino-vit (4 blocks; linear layers and attention products in bf16):
 *     block 4's tokens max |err| <= TOL_VIT of max |ref|
 *   MobileNetV2 (../shared's TFLite graph; its convolutions' GEMMs in bf16,
 *     depthwise f32) blocks 5 and 12 on a 96 x 96 image: max |err| <=
 *     TOL_MNV2 of max |f32 glad| (no PyTorch reference for this graph; f32
 *     glad is checked against TFLite's own labels in test_tflite)
 * Skips visibly on CPUs without AVX512_BF16 (or with GLAD_NO_BF16 set). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/rng.h"
#include "models/mobilenet.h"
#include "models/unet.h"
#include "models/vit.h"
#include "io/safetensors.h"
#include "nn/bf16.h"
#include "nn/bf16k.h"
#include "nn/cpu.h"
#include "nn/nn.h"
#include "nn/wino3x3.h"
#include "nn/wino4x4.h"
#include "nn/winoblk.h"

#define TOL_W22 6e-3
#define TOL_UNET 1.5e-2
#define TOL_VIT 1e-2
#define TOL_MNV2 3e-2
#define TOL_ATT 1e-2
#define TOL_ATT_GRAD 1e-2

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static void conversions(void)
{
    CHECK(glad_bf16_from_f32(1.0f) == 0x3f80);
    CHECK(glad_bf16_from_f32(1.0f + 0x1p-8f) == 0x3f80);                  /* tie, to the even 1.0 */
    CHECK(glad_bf16_from_f32(1.0f + 0x1p-7f + 0x1p-8f) == 0x3f82);        /* tie, up to the even neighbour */
    CHECK(glad_bf16_from_f32(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);       /* above the tie */
    CHECK(glad_bf16_from_f32(-2.0f) == 0xc000);
    CHECK(glad_bf16_from_f32(INFINITY) == 0x7f80);
    CHECK(isnan(glad_bf16_to_f32(glad_bf16_from_f32(NAN))));
    CHECK(glad_bf16_to_f32(glad_bf16_from_f32(3.0f)) == 3.0f);
    CHECK(glad_bf16_round(1e-40f) == 0.0f);                               /* denormals flush, as the hardware's */
    CHECK(strcmp(glad_precision_names[GLAD_PREC_BF16], "bf16") == 0 && glad_precision_names[2] == NULL);
    CHECK(glad_precision_set((glad_precision)7) == GLAD_EINVAL && glad_precision_get() == GLAD_PREC_F32);
}

/* out (OC, H, W) = direct conv (k = 1 or 3, pad k/2) in double, inputs rounded to bf16 when rnd */
static void conv_ref(double *out, double *absum, const float *x, const float *w, const float *b, int C, int H, int W, int OC, int k,
                     int rnd)
{
    int p = k / 2;
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double s = b[o], a = 0;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int y = i + ky - p, xx = j + kx - p;
                            if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                            float wv = w[((size_t)o * C + c) * k * k + ky * k + kx], xv = x[((size_t)c * H + y) * W + xx];
                            if (rnd) { wv = glad_bf16_round(wv); xv = glad_bf16_round(xv); }
                            s += (double)wv * xv;
                            a += fabs((double)wv * xv);
                        }
                out[((size_t)o * H + i) * W + j] = s;
                if (absum) absum[((size_t)o * H + i) * W + j] = a;
            }
}

/* one conv of B = 2 images in f32, bf16, f32 again: the f32 results equal
 * bit for bit, bf16 differs from them and stays within its tolerance */
static void conv_case(int C, int H, int W, int OC, int k, double tol, const char *what)
{
    uint64_t s = 42 + (uint64_t)C * 131 + H;
    int B = 2;
    size_t nx = (size_t)B * C * H * W, no = (size_t)B * OC * H * W, nw = (size_t)OC * C * k * k;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)OC * 4), *o1 = malloc(no * 4), *o2 = malloc(no * 4),
          *o3 = malloc(no * 4), *ws = malloc(glad_conv2d_workspace(C, H, W, OC, k, k, 1, k / 2) * 4 + 64);
    double *ref = malloc(sizeof(double) * no / B), *ab = malloc(sizeof(double) * no / B);
    for (size_t i = 0; i < nx; i++) x[i] = frand(&s);
    for (size_t i = 0; i < nw; i++) w[i] = frand(&s) / sqrtf((float)(C * k * k));
    for (int i = 0; i < OC; i++) b[i] = 0.1f * frand(&s);
    glad_conv2d_forward(o1, x, w, b, B, C, H, W, OC, k, k, 1, k / 2, ws);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    glad_conv2d_forward(o2, x, w, b, B, C, H, W, OC, k, k, 1, k / 2, ws);
    CHECK(glad_precision_set(GLAD_PREC_F32) == 0);
    glad_conv2d_forward(o3, x, w, b, B, C, H, W, OC, k, k, 1, k / 2, ws);
    CHECKF(memcmp(o1, o3, no * 4) == 0, "%s: f32 after bf16 not bit-identical", what);
    double worst = 0, mx = 0;
    int differs = memcmp(o1, o2, no * 4) != 0;
    for (int n = 0; n < B; n++) {
        conv_ref(ref, ab, x + (size_t)n * C * H * W, w, b, C, H, W, OC, k, k == 1);
        for (size_t i = 0; i < no / B; i++) {
            double e = fabs(o2[(size_t)n * no / B + i] - ref[i]);
            mx = fmax(mx, fabs(ref[i]));
            worst = fmax(worst, k == 1 ? e / (ab[i] + 1e-30) : e);
        }
    }
    if (k != 1) worst /= mx;
    printf("bf16 %s: %s error %.3g (tolerance %.3g)\n", what, k == 1 ? "max |err| / sum|w x|" : "max |err| / max |out|", worst, tol);
    CHECKF(differs == (tol > 0), "%s: bf16 path %s", what, differs ? "ran where it should not" : "did not run");
    if (tol > 0) CHECKF(worst <= tol, "%s: bf16 error %.3g over %.3g", what, worst, tol);
    free(x); free(w); free(b); free(o1); free(o2); free(o3); free(ws); free(ref); free(ab);
}

/* the bf16 twin of F(2x2,3x3) writes V in bf16 pairs straight from its
 * transform: bit for bit wino3x3.c's fp32 V rounded into pair rows
 * (glad_bf16_pack_pairs, the rounding the twin did in place before), for
 * a block of 20 tiles in three runs over tile rows 8-10 of a 24 x 20 plane
 * (partial runs, lanes past the block zero) */
static void twin_input_case(void)
{
    enum { NI = 34, H = 24, W = 20, NT = 32, nt = 20 };
    int Wp = W + 2, tw = W / 2;
    const glad_wino_kernel *k = glad_wino_bf16(&glad_wino3x3_kernel, NI), *kf = &glad_wino3x3_kernel;
    CHECK(k && k->nt == NT && k->ne == 16);
    if (!k) return;
    uint64_t s = 7;
    size_t np = (size_t)NI * (H + 2) * Wp + 64, vs = glad_wino_plane((size_t)NI * NT);
    float *xp = malloc(np * 4), *V = aligned_alloc(64, 16 * vs * 4), *Vf = aligned_alloc(64, 16 * vs * 4);
    uint16_t *pk = malloc(sizeof(uint16_t) * (size_t)NI * NT);
    for (size_t i = 0; i < np; i++) xp[i] = 4 * frand(&s);
    memset(V, 0xff, 16 * vs * 4);
    glad_wino_seg sg[8];
    int nseg = 0;
    for (int t = 85; t < 85 + nt;) {   /* the runs of tiles 85 .. 104, as winoblk.c's segments */
        int tj = t % tw, L = tw - tj < 85 + nt - t ? tw - tj : 85 + nt - t;
        sg[nseg++] = (glad_wino_seg){t / tw, tj, t - 85, L};
        t += L;
    }
    k->input(V, xp, NI, H, Wp, sg, nseg, nt);
    kf->input(Vf, xp, NI, H, Wp, sg, nseg, nt);
    int same = 1;
    for (int e = 0; e < 16; e++) {
        glad_bf16_pack_pairs(pk, 2 * NT, Vf + e * vs, NT, NI, NT);
        same &= memcmp(pk, V + e * vs, sizeof(uint16_t) * (size_t)NI * NT) == 0;
    }
    CHECKF(same, "bf16 F(2x2) input transform differs from the fp32 one rounded");
    free(xp); free(V); free(Vf); free(pk);
}

/* conv3x3.c's forward on a large plane pads and transforms it band by band
 * (GroupNorm+SiLU rows made into a small buffer per band, each thread
 * through its own slab of rows): bit for bit the Winograd driver on the
 * whole plane padded at once, in f32 (F(4x4) on 256 x 256, bands of up to
 * 28 rows, shorter ones at the slabs' ends; F(2x2) on 254 rows) and in
 * bf16 (its F(2x2) twin), whatever the thread count; and so on small
 * planes with 2 or 3 threads, where each thread pads and transforms its own
 * slab of rows as one band or a few equal ones (f32 from 64 x 64, bf16
 * from 16 x 16; 3 threads give slabs of unequal heights) */
static void band_case(int C, int H, int W, int OC, int bf16)
{
    uint64_t s = 99 + (uint64_t)H;
    int G = 4, Wp = W + 2;
    size_t nx = (size_t)C * H * W, no = (size_t)OC * H * W, plane = (size_t)(H + 2) * Wp;
    size_t nws = glad_conv2d_workspace(C, H, W, OC, 3, 3, 1, 1);
    float *x = malloc(nx * 4), *w = malloc((size_t)OC * C * 9 * 4), *b = malloc((size_t)OC * 4), *o1 = malloc(no * 4),
          *o2 = malloc(no * 4), *ws = malloc(nws * 4), *xp = calloc(plane * C + 64, 4);
    /* statistics whose affine (gamma rstd, beta - mean gamma rstd) is exact,
     * so the padding here makes conv3x3.c's values whatever the contraction */
    float mean[4] = {0.25f, -0.5f, 0, 1}, rstd[4] = {2, 1, 0.5f, 4}, gam[64], bet[64];
    for (int c = 0; c < C; c++) { gam[c] = 1 + c / 64.0f; bet[c] = (c % 5) / 8.0f; }
    glad_gnsilu pre = {mean, rstd, gam, bet, G};
    for (size_t i = 0; i < nx; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)OC * C * 9; i++) w[i] = frand(&s) / 12;
    for (int i = 0; i < OC; i++) b[i] = 0.1f * frand(&s);
    if (bf16) CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    glad_conv2d_forward_gnsilu(o1, x, &pre, w, b, 1, C, H, W, OC, ws);
    glad_precision_set(GLAD_PREC_F32);
    for (int c = 0; c < C; c++) {
        int g = c / (C / G);
        float ga = gam[c] * rstd[g], be = bet[c] - mean[g] * ga;
        /* bf16: the SiLU conv3x3.c uses ahead of its bf16 kernel */
        for (int i = 0; i < H; i++)
            (bf16 ? glad_groupnorm_silu_row_coarse : glad_groupnorm_silu_row)(xp + c * plane + (size_t)(i + 1) * Wp + 1,
                                                                            x + ((size_t)c * H + i) * W, W, ga, be);
    }
    const glad_wino_kernel *k = H % 4 == 0 && W % 4 == 0 ? &glad_wino4x4_kernel : &glad_wino3x3_kernel;
    if (bf16) k = glad_wino_bf16(k, C);
    float *U = malloc(glad_wino_weight_floats(k, C, OC) * 4);
    k->weights(U, w, C, OC, 0);
    CHECK(glad_wino_drive(k, o2, xp, U, b, NULL, C, H, W, OC, 0) == 0);
    CHECKF(memcmp(o1, o2, no * 4) == 0, "%s %dx%d C%d: banded forward differs from the whole plane's", bf16 ? "bf16" : "f32", H, W, C);
    free(x); free(w); free(b); free(o1); free(o2); free(ws); free(xp); free(U);
}

/* conv3x3.c's forward of several images on planes of 32 x 32 and less
 * gives each thread whole images (each op inside on one thread): bit for
 * bit the images' forwards one at a time, with GroupNorm+SiLU and the
 * epilogue's adds, on Winograd's planes and the direct kernel's */
static void byimage_case(int C, int H, int OC, int bf16)
{
    enum { B = 4, G = 4 };
    uint64_t s = 7 + (uint64_t)H;
    size_t nx = (size_t)C * H * H, no = (size_t)OC * H * H, nws = glad_conv2d_workspace(C, H, H, OC, 3, 3, 1, 1);
    float *x = malloc(B * nx * 4), *w = malloc((size_t)OC * C * 9 * 4), *b = malloc((size_t)OC * 4), *o1 = malloc(B * no * 4),
          *o2 = malloc(B * no * 4), *res = malloc(B * no * 4), *emb = malloc((size_t)B * OC * 4), *ws = malloc(nws * 4);
    float mean[B * G], rstd[B * G], gam[64], bet[64];
    for (int i = 0; i < B * G; i++) { mean[i] = 0.1f * (i % 5); rstd[i] = 1 + 0.25f * (i % 3); }
    for (int c = 0; c < C; c++) { gam[c] = 1 + c / 64.0f; bet[c] = (c % 5) / 8.0f; }
    for (size_t i = 0; i < B * nx; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)OC * C * 9; i++) w[i] = frand(&s) / 12;
    for (int i = 0; i < OC; i++) b[i] = 0.1f * frand(&s);
    for (size_t i = 0; i < B * no; i++) res[i] = frand(&s);
    for (int i = 0; i < B * OC; i++) emb[i] = frand(&s);
    if (bf16) CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    int nth = omp_get_max_threads();
    omp_set_num_threads(2);
    glad_gnsilu pre = {mean, rstd, gam, bet, G};
    glad_conv_epi ep = {emb, res};
    glad_conv2d_forward_epi(o1, x, &pre, &ep, w, b, B, C, H, H, OC, 3, 3, 1, 1, ws);
    for (int n = 0; n < B; n++) {
        /* image n alone: its statistics and epilogue rows first */
        glad_gnsilu pn = {mean + n * G, rstd + n * G, gam, bet, G};
        glad_conv_epi en = {emb + n * OC, res + n * no};
        glad_conv2d_forward_epi(o2 + n * no, x + n * nx, &pn, &en, w, b, 1, C, H, H, OC, 3, 3, 1, 1, ws);
    }
    omp_set_num_threads(nth);
    glad_precision_set(GLAD_PREC_F32);
    CHECKF(memcmp(o1, o2, B * no * 4) == 0, "%s %dx%d C%d OC%d: a batch of 4 on 2 threads differs from its images one by one", bf16 ? "bf16" : "f32",
           H, H, C, OC);
    free(x); free(w); free(b); free(o1); free(o2); free(res); free(emb); free(ws);
}

/* glad_bf16_gemm against a double reference on the bf16-rounded operands:
 * |err| <= 4e-6 sum_k |a b| per element (fp32 sums only), for both layouts
 * of B, alpha, accumulation, packed B, and sizes that need every padding */
static void gemm_case(int M, int N, int K, int bt, float alpha, int add)
{
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)(M * 131 + N * 7 + K + bt);
    size_t lda = (size_t)K + 3, ldb = (bt ? (size_t)K : (size_t)N) + 5, ldc = (size_t)N + 2;
    float *A = malloc(sizeof(float) * M * lda), *B = malloc(sizeof(float) * (bt ? N : K) * ldb);
    float *C = malloc(sizeof(float) * M * ldc), *C2 = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    uint16_t *bp = aligned_alloc(64, (glad_bf16_pb_elems(K, N) * 2 + 63) / 64 * 64);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = frand(&s);
    for (size_t i = 0; i < (size_t)(bt ? N : K) * ldb; i++) B[i] = frand(&s);
    for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = C[i] = C2[i] = frand(&s);
    CHECK(glad_bf16_gemm(C, ldc, A, lda, B, ldb, bt, NULL, M, N, K, alpha, add) == 0);
    glad_bf16_pack_b(bp, B, ldb, bt, K, N);
    CHECK(glad_bf16_gemm(C2, ldc, A, lda, NULL, 0, bt, bp, M, N, K, alpha, add) == 0);
    CHECKF(memcmp(C, C2, sizeof(float) * M * ldc) == 0, "gemm %dx%dx%d: packed B differs", M, N, K);
    double worst = 0;
    int pad_ok = 1;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double r = 0, ab = 0;
            for (int k = 0; k < K; k++) {
                double a = glad_bf16_round(A[(size_t)m * lda + k]), b = glad_bf16_round(bt ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n]);
                r += a * b;
                ab += fabs(a * b);
            }
            r = alpha * r + (add ? C0[(size_t)m * ldc + n] : 0);
            double e = fabs(C[(size_t)m * ldc + n] - r) / (fabs(alpha) * ab + 1e-30);
            worst = e > worst ? e : worst;
        }
        for (size_t n = (size_t)N; n < ldc; n++) pad_ok &= C[(size_t)m * ldc + n] == C0[(size_t)m * ldc + n];
    }
    printf("bf16 gemm %dx%dx%d bt %d: max |err| / sum|a b| %.3g (tolerance 4e-6)\n", M, N, K, bt, worst);
    CHECKF(worst <= 4e-6, "gemm %dx%dx%d bt %d: err %.3g", M, N, K, bt, worst);
    CHECKF(pad_ok, "gemm %dx%dx%d: wrote past N", M, N, K);
    free(A); free(B); free(C); free(C2); free(C0); free(bp);
}

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

static void unet_fixture(const char *shared)
{
    char wp[512], cp[512];
    snprintf(wp, sizeof wp, "%s/fixtures/ddad-unet-rgb.weights.safetensors", shared);
    snprintf(cp, sizeof cp, "%s/fixtures/ddad-unet-rgb.case.safetensors", shared);
    glad_unet *u;
    glad_st *st;
    int rc = glad_unet_load(&u, wp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    if (glad_st_open(&st, cp)) { CHECK(0); glad_unet_free(u); return; }
    glad_tensor x, t, eps;
    CHECK(glad_st_get_f32(st, "x", &x) == 0 && glad_st_get_f32(st, "t", &t) == 0 && glad_st_get_f32(st, "eps", &eps) == 0);
    int B = (int)x.shape[0];
    size_t n = glad_tensor_numel(&x);
    float *o32 = malloc(n * 4), *o16 = malloc(n * 4), *again = malloc(n * 4);
    CHECK(glad_unet_forward(u, o32, x.data, t.data, B, 0, 0) == 0);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    CHECK(glad_unet_forward(u, o16, x.data, t.data, B, 0, 0) == 0);
    /* the second pass reads the model's bf16 weight cache: the same bits */
    CHECK(glad_unet_forward(u, again, x.data, t.data, B, 0, 0) == 0);
    CHECK(memcmp(o16, again, n * 4) == 0);
    /* weights changed through glad_unet_weights: the cache is rebuilt (a
     * stale cache would give o16 again), and restored, o16 again */
    size_t off = 0;   /* the first res block's first 3x3 conv: a cached Winograd U */
    for (int i = 0; i < glad_unet_param_count(u); i++)
        if (strstr(glad_unet_param(u, i)->name, "in_layers.2.weight") && glad_unet_param(u, i)->shape[1] >= 16) { off = glad_unet_param(u, i)->off; break; }
    CHECK(off > 0);
    float *w = glad_unet_weights(u) + off, keep[64];
    memcpy(keep, w, sizeof keep);
    for (int i = 0; i < 64; i++) w[i] *= 1.5f;
    CHECK(glad_unet_forward(u, again, x.data, t.data, B, 0, 0) == 0);
    CHECK(memcmp(o16, again, n * 4) != 0);
    memcpy(glad_unet_weights(u) + off, keep, sizeof keep);
    CHECK(glad_unet_forward(u, again, x.data, t.data, B, 0, 0) == 0);
    CHECK(memcmp(o16, again, n * 4) == 0);
    CHECK(glad_precision_set(GLAD_PREC_F32) == 0);
    CHECK(glad_unet_forward(u, again, x.data, t.data, B, 0, 0) == 0);
    double e32 = rel_err(o32, eps.data, n), e16 = rel_err(o16, eps.data, n);
    printf("bf16 UNet ddad-unet-rgb forward: max |err| / max |eps| f32 %.3g, bf16 %.3g (tolerance %.3g)\n", e32, e16, TOL_UNET);
    CHECKF(e16 <= TOL_UNET, "UNet bf16 rel err %.3g", e16);
    CHECK(e16 > e32);   /* the bf16 kernels ran */
    CHECK(memcmp(o32, again, n * 4) == 0);
    glad_tensor_free(&x); glad_tensor_free(&t); glad_tensor_free(&eps);
    glad_st_close(st);
    glad_unet_free(u);
    free(o32); free(o16); free(again);
}

/* the DINO ViT fixture (tests/fixtures, s64: 65 tokens) in bf16 against
 * PyTorch's fp32 block outputs; the model's bf16 cache follows its weights */
/* attention in bf16 (attention.c: Q, K, V, dA, the exponentials, the
 * weights and the logits' gradient rounded to bf16 for the products, fp32
 * sums, softmax and its backward in fp32) against a direct double
 * computation on the unrounded inputs: output max |err| <= TOL_ATT of max
 * |out|, saved weights within TOL_ATT (of the largest, 1) and summing to 1
 * over the keys, the gradients of q, k, v (the backward given the bf16
 * forward's weights) max |err| <= TOL_ATT_GRAD of max |grad|; a training
 * forward gives the inference output; one thread gives the same bits as two,
 * forward and backward. Shapes: the UNet's 1024 tokens of 32 channels a head,
 * 64 channels, 8 (K^T transposed one by one: c % 16 != 0), 48 (dK^T and dV^T
 * padded to 64 columns). */
static void attention_case(int B, int C, int T, int H)
{
    int c = C / H;
    size_t nq = (size_t)B * 3 * C * T, no = (size_t)B * C * T, na = (size_t)B * H * T * T;
    float *qkv = malloc(nq * 4), *o1 = malloc(no * 4), *o2 = malloc(no * 4), *o3 = malloc(no * 4), *att = malloc(na * 4);
    float *da = malloc(no * 4), *g1 = calloc(nq, 4), *g2 = calloc(nq, 4), *ws = malloc((size_t)3 * T * T * 4);
    double *W = malloc(sizeof(double) * T * T), *dL = malloc(sizeof(double) * T * T);
    uint64_t sd = 7;
    for (size_t i = 0; i < nq; i++) qkv[i] = 1.5f * frand(&sd);
    for (size_t i = 0; i < no; i++) da[i] = frand(&sd);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    glad_attention_forward(o1, NULL, qkv, B, C, T, H, ws);
    glad_attention_forward(o2, att, qkv, B, C, T, H, ws);
    glad_attention_backward(g1, da, qkv, att, B, C, T, H, ws);
    int nth = omp_get_max_threads();
    omp_set_num_threads(nth > 1 ? 1 : 2);
    glad_attention_forward(o3, NULL, qkv, B, C, T, H, ws);
    glad_attention_backward(g2, da, qkv, att, B, C, T, H, ws);
    omp_set_num_threads(nth);
    CHECKF(memcmp(o1, o3, no * 4) == 0 && memcmp(g1, g2, nq * 4) == 0, "bf16 attention B%d C%d T%d: results depend on the thread count",
           B, C, T);
    glad_precision_set(GLAD_PREC_F32);
    memset(g2, 0, nq * 4);
    glad_attention_backward(g2, da, qkv, att, B, C, T, H, ws);
    CHECKF(memcmp(g1, g2, nq * 4) != 0, "bf16 attention B%d C%d T%d: the backward is the f32 one (bf16 did not run)", B, C, T);
    CHECKF(memcmp(o1, o2, no * 4) == 0, "bf16 attention B%d C%d T%d: training forward output differs", B, C, T);

    double eo = 0, mo = 0, ew = 0, es = 0, eg = 0, mg = 0, s2 = 1 / sqrt((double)c);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
            const float *q = qkv + off, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
            const float *dq = g1 + off, *dk = dq + (size_t)c * T, *dv = dk + (size_t)c * T;
            const float *o = o1 + ((size_t)b * C + (size_t)h * c) * T, *wt = att + ((size_t)b * H + h) * T * T;
            const float *dA = da + ((size_t)b * C + (size_t)h * c) * T;
            for (int t = 0; t < T; t++) {
                double mx = -1e300, z = 0, sw = 0, *Wt = W + (size_t)t * T;
                for (int s = 0; s < T; s++) {
                    double l = 0;
                    for (int j = 0; j < c; j++) l += (double)q[(size_t)j * T + t] * k[(size_t)j * T + s];
                    Wt[s] = l * s2;
                    mx = fmax(mx, Wt[s]);
                }
                for (int s = 0; s < T; s++) { Wt[s] = exp(Wt[s] - mx); z += Wt[s]; }
                for (int s = 0; s < T; s++) {
                    Wt[s] /= z;
                    /* the blocked layout of attention.c (T % 32 == 0): block t / 32's T rows of 32 */
                    double g = wt[(size_t)(t / 32) * 32 * T + (size_t)s * 32 + t % 32];
                    ew = fmax(ew, fabs(g - Wt[s]));
                    sw += g;
                }
                es = fmax(es, fabs(sw - 1));
                for (int j = 0; j < c; j++) {
                    double r = 0;
                    for (int s = 0; s < T; s++) r += Wt[s] * v[(size_t)j * T + s];
                    eo = fmax(eo, fabs(r - o[(size_t)j * T + t]));
                    mo = fmax(mo, fabs(r));
                }
                /* dL = W (dW - sum_s W dW), dW[t][s] = dA_t . v_s */
                double dot = 0, *dLt = dL + (size_t)t * T;
                for (int s = 0; s < T; s++) {
                    double dw = 0;
                    for (int j = 0; j < c; j++) dw += (double)dA[(size_t)j * T + t] * v[(size_t)j * T + s];
                    dLt[s] = dw;
                    dot += dw * Wt[s];
                }
                for (int s = 0; s < T; s++) dLt[s] = Wt[s] * (dLt[s] - dot);
            }
            for (int j = 0; j < c; j++)
                for (int u = 0; u < T; u++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int w = 0; w < T; w++) {
                        gq += s2 * k[(size_t)j * T + w] * dL[(size_t)u * T + w];
                        gk += s2 * q[(size_t)j * T + w] * dL[(size_t)w * T + u];
                        gv += (double)dA[(size_t)j * T + w] * W[(size_t)w * T + u];
                    }
                    size_t i = (size_t)j * T + u;
                    eg = fmax(eg, fmax(fabs(gq - dq[i]), fmax(fabs(gk - dk[i]), fabs(gv - dv[i]))));
                    mg = fmax(mg, fmax(fabs(gq), fmax(fabs(gk), fabs(gv))));
                }
        }
    printf("bf16 attention B%d C%d T%d heads %d: max |err| / max |out| %.3g, weights max |err| %.3g, |sum - 1| %.3g (tolerance %.3g); "
           "gradients max |err| / max |grad| %.3g (tolerance %.3g)\n", B, C, T, H, eo / mo, ew, es, TOL_ATT, eg / mg, TOL_ATT_GRAD);
    CHECKF(eo <= TOL_ATT * mo && ew <= TOL_ATT && es <= 1e-5, "bf16 attention B%d C%d T%d: err %.3g, weights %.3g, sum %.3g", B, C, T,
           eo / mo, ew, es);
    CHECKF(eg <= TOL_ATT_GRAD * mg, "bf16 attention backward B%d C%d T%d: err %.3g", B, C, T, eg / mg);
    free(qkv); free(o1); free(o2); free(o3); free(att); free(da); free(g1); free(g2); free(ws); free(W); free(dL);
}

static void vit_fixture(void)
{
    glad_vit *v;
    glad_st *st;
    glad_tensor x = {0}, ref = {0};
    if (glad_vit_load(&v, "tests/fixtures/dino-vit.weights.safetensors")) { SKIP("tests/fixtures/dino-vit absent"); return; }
    if (glad_st_open(&st, "tests/fixtures/dino-vit.case.safetensors")) { CHECK(0); glad_vit_free(v); return; }
    CHECK(glad_st_get_f32(st, "s64.x", &x) == 0 && glad_st_get_f32(st, "s64.block4", &ref) == 0);
    int blk = 4, B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
    size_t n = glad_tensor_numel(&ref);
    float *o32 = malloc(n * 4), *o16 = malloc(n * 4), *again = malloc(n * 4);
    CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &o32, NULL) == 0);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &o16, NULL) == 0);
    CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &again, NULL) == 0);   /* from the cache */
    CHECK(memcmp(o16, again, n * 4) == 0);
    size_t np;
    float *w = glad_vit_param(v, "blocks.0.mlp.fc1.weight", &np);
    CHECK(w && np > 0);
    if (w) {
        float keep = w[0];
        w[0] += 1.0f;   /* the cached bf16 copy must not outlive this */
        CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &again, NULL) == 0);
        CHECK(memcmp(o16, again, n * 4) != 0);
        w = glad_vit_param(v, "blocks.0.mlp.fc1.weight", NULL);
        w[0] = keep;
        CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &again, NULL) == 0);
        CHECK(memcmp(o16, again, n * 4) == 0);
    }
    CHECK(glad_precision_set(GLAD_PREC_F32) == 0);
    CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &blk, &again, NULL) == 0);
    CHECK(memcmp(o32, again, n * 4) == 0);
    double e32 = rel_err(o32, ref.data, n), e16 = rel_err(o16, ref.data, n);
    printf("bf16 ViT dino-vit block 4 tokens: max |err| / max |ref| f32 %.3g, bf16 %.3g (tolerance %.3g)\n", e32, e16, TOL_VIT);
    CHECKF(e16 <= TOL_VIT, "ViT bf16 rel err %.3g", e16);
    CHECK(e16 > e32);
    glad_tensor_free(&x); glad_tensor_free(&ref);
    glad_st_close(st);
    glad_vit_free(v);
    free(o32); free(o16); free(again);
}

static void mobilenet_case(const char *shared)
{
    char path[512];
    snprintf(path, sizeof path, "%s/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite", shared);
    glad_mobilenet *m;
    if (glad_mobilenet_load(&m, path)) { SKIP("MobileNetV2 .tflite absent: not checked in bf16"); return; }
    int H = 96, W = 96, blk[2] = {5, 12}, C[2], h[2], w[2];
    size_t n[2];
    float *x = malloc(sizeof(float) * 3 * H * W), *f[2], *g[2];
    uint64_t s = 7;
    for (int i = 0; i < 3 * H * W; i++) x[i] = 0.5f * frand(&s) + 0.3f * sinf((float)(i % W) * 0.2f);
    for (int i = 0; i < 2; i++) {
        CHECK(glad_mobilenet_out_shape(m, blk[i], H, W, &C[i], &h[i], &w[i]) == 0);
        n[i] = (size_t)C[i] * h[i] * w[i];
        f[i] = malloc(n[i] * 4);
        g[i] = malloc(n[i] * 4);
    }
    CHECK(glad_mobilenet_features(m, x, H, W, 2, blk, f) == 0);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    CHECK(glad_mobilenet_features(m, x, H, W, 2, blk, g) == 0);
    CHECK(glad_precision_set(GLAD_PREC_F32) == 0);
    for (int i = 0; i < 2; i++) {
        double e = rel_err(g[i], f[i], n[i]);
        printf("bf16 MobileNetV2 block %d (96x96): max |err| / max |f32| %.3g (tolerance %.3g)\n", blk[i], e, TOL_MNV2);
        CHECKF(e > 0 && e <= TOL_MNV2, "MobileNetV2 block %d bf16 rel err %.3g", blk[i], e);
        free(f[i]);
        free(g[i]);
    }
    free(x);
    glad_mobilenet_free(m);
}

int main(void)
{
    conversions();
    if (glad_nn_avx512()) {   /* conv3x3.c and the Winograd kernels run on AVX-512F only */
        band_case(16, 256, 256, 8, 0);
        band_case(16, 254, 256, 8, 0);
        int nth = omp_get_max_threads();
        for (int nt = 2; nt <= 3; nt++) {
            omp_set_num_threads(nt);
            band_case(32, 128, 128, 32, 0);
            band_case(64, 64, 64, 16, 0);
        }
        omp_set_num_threads(nth);
        byimage_case(32, 32, 32, 0);
        byimage_case(64, 16, 48, 0);
        byimage_case(64, 8, 64, 0);
    }
    if (!glad_bf16_available()) {
        CHECK(glad_precision_set(GLAD_PREC_BF16) == GLAD_EUNSUPPORTED && glad_precision_get() == GLAD_PREC_F32);
        SKIP("no AVX512_BF16 (or GLAD_NO_BF16 / GLAD_NO_AVX512 set): bf16 kernels not checked");
        return check_done();
    }
    twin_input_case();
    band_case(16, 256, 256, 8, 1);
    band_case(16, 254, 256, 8, 1);
    int nth = omp_get_max_threads();
    for (int nt = 2; nt <= 3; nt++) {
        omp_set_num_threads(nt);
        band_case(32, 128, 128, 32, 1);
        band_case(64, 16, 16, 64, 1);
        band_case(32, 40, 40, 16, 1);
    }
    omp_set_num_threads(nth);
    byimage_case(32, 32, 32, 1);
    byimage_case(64, 16, 48, 1);
    gemm_case(13, 45, 37, 1, 0.125f, 0);
    gemm_case(70, 33, 64, 0, 1.0f, 1);
    gemm_case(8, 32, 2, 1, -0.5f, 1);
    gemm_case(1, 100, 385, 0, 1.0f, 0);
    gemm_case(9, 48, 96, 1, 1.0f, 0);   /* pack_b bt in 16 x 16 register transposes (N % 16, K % 32) */
    conv_case(48, 8, 8, 24, 1, 4e-6, "1x1 conv C48 OC24 8x8");
    conv_case(64, 16, 16, 32, 1, 4e-6, "1x1 conv C64 OC32 16x16");
    conv_case(32, 16, 16, 16, 3, TOL_W22, "3x3 Winograd F(2x2) C32 OC16 16x16");
    conv_case(32, 32, 32, 16, 3, TOL_W22, "3x3 Winograd 32x32 C32 OC16 32x32");
    conv_case(96, 32, 32, 8, 3, TOL_W22, "3x3 Winograd 32x32 C96 OC8 32x32");
    conv_case(17, 32, 32, 8, 3, 0, "3x3 odd C17 (stays f32)");
    conv_case(32, 8, 8, 16, 3, 0, "3x3 direct 8x8 (stays f32)");
    attention_case(1, 64, 1024, 2);
    attention_case(2, 128, 64, 2);
    attention_case(2, 16, 64, 2);
    attention_case(1, 96, 256, 2);
    vit_fixture();
    const char *sh = check_shared();
    if (sh) { unet_fixture(sh); mobilenet_case(sh); }
    else SKIP("../shared absent: the UNet fixture in bf16 not checked");
    return check_done();
}
