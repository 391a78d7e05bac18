/* nn.h - the neural-network engine's kernels: forward and backward of each
 * layer side by side, outputs first, d-prefixed gradients. Activations are
 * NCHW float32 (channels-last only in the *_nhwc kernels of TFLite graphs).
 * Backward kernels ACCUMULATE (+=) into parameter gradients (dw, db,
 * dgamma, ...) and into dx, so a tensor used twice sums its gradients;
 * callers zero them first. Scratch memory is passed in (see the
 * *_workspace functions); the exceptions are per-thread partials and scratch
 * of some AVX-512F kernels (the Winograd driver, the 1x1 and attention
 * weight gradients), which take a slower path when that allocation fails.
 * No global state. GEMMs go through OpenBLAS cblas_sgemm, or on AVX-512F
 * the register tile of tile.h; loops are OpenMP-parallel. */
#ifndef GLAD_NN_H
#define GLAD_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- conv2d (any kernel, stride, padding; im2col + GEMM) ---- */
size_t glad_conv2d_workspace(int C, int H, int W, int OC, int kh, int kw, int stride, int pad);   /* floats */
/* the part of it glad_conv2d_forward(_gnsilu) uses: inference needs no more */
size_t glad_conv2d_forward_workspace(int C, int H, int W, int OC, int kh, int kw, int stride, int pad);
void glad_conv2d_forward(float *out, const float *x, const float *w, const float *b, int B, int C, int H, int W,
                         int OC, int kh, int kw, int stride, int pad, float *ws);
/* conv2d of silu(groupnorm(x)) without materialising it: the GroupNorm
 * statistics (glad_groupnorm_silu_forward with out NULL) and affine are
 * applied while the input is copied for the convolution; the result is bit
 * for bit conv2d of glad_groupnorm_silu_forward's output. Only where
 * glad_conv2d_gnsilu_ok (3x3, stride 1, padding 1 on an AVX-512F CPU). */
typedef struct { const float *mean, *rstd, *gamma, *beta; int groups; } glad_gnsilu;
int glad_conv2d_gnsilu_ok(int kh, int kw, int stride, int pad);
void glad_conv2d_forward_gnsilu(float *out, const float *x, const glad_gnsilu *pre, const float *w, const float *b, int B,
                                int C, int H, int W, int OC, float *ws);
/* an output epilogue for glad_conv2d_forward_epi, applied where the conv
 * writes its output (a pass over the tensor less for the adds that follow a
 * conv in a residual network): out = (conv + b[o]) + emb[n OC + o] when emb
 * (B,OC) is given, then out = res + out when res (B,OC,Ho,Wo) is (neither
 * may alias out). The same bits as those adds made afterwards. */
typedef struct { const float *emb, *res; } glad_conv_epi;
/* glad_conv2d_forward (pre NULL) or glad_conv2d_forward_gnsilu (pre given:
 * only where glad_conv2d_gnsilu_ok) with epilogue epi (NULL: none) */
void glad_conv2d_forward_epi(float *out, const float *x, const glad_gnsilu *pre, const glad_conv_epi *epi, const float *w,
                             const float *b, int B, int C, int H, int W, int OC, int kh, int kw, int stride, int pad, float *ws);
/* its backward (dx: the gradient of the normalised input, may be NULL); the
 * same bit for bit as glad_conv2d_backward given that input */
void glad_conv2d_backward_gnsilu(float *dx, float *dw, float *db, const float *dout, const float *x, const glad_gnsilu *pre,
                                 const float *w, int B, int C, int H, int W, int OC, float *ws, int dxmode);
/* dw, db accumulate; dx (may be NULL: no input gradient) accumulates with
 * GLAD_DX_ADD and is overwritten with GLAD_DX_SET (a gradient this conv
 * alone creates: no zeroing pass, no read of zeros) */
enum { GLAD_DX_ADD = 0, GLAD_DX_SET = 1 };
void glad_conv2d_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, int B,
                          int C, int H, int W, int OC, int kh, int kw, int stride, int pad, float *ws, int dxmode);

/* ---- linear: out (B,O) = x (B,I) W^T + b ---- */
void glad_linear_forward(float *out, const float *x, const float *w, const float *b, int B, int NI, int NO);
void glad_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, int B, int NI, int NO);

/* ---- GroupNorm over (B, C, N) with G groups; saves mean and rstd (B*G each) ---- */
void glad_groupnorm_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                            int B, int C, int N, int G, float eps);
void glad_groupnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *mean,
                             const float *rstd, const float *gamma, int B, int C, int N, int G);

/* ---- GroupNorm fused with SiLU: out = silu(groupnorm(x)); mean/rstd as above
 * (out NULL: the statistics only). The backward recomputes silu'(z) from x
 * and the statistics, so the normalised tensor need not be kept; ws: 2*B*C
 * doubles. dx may be NULL. ---- */
void glad_groupnorm_silu_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma,
                                 const float *beta, int B, int C, int N, int G, float eps);
/* one channel row of it: o = silu(x ga + be), ga = gamma rstd, be = beta - mean ga */
void glad_groupnorm_silu_row(float *o, const float *x, int n, float ga, float be);
/* the same to under 6e-5 relative on AVX-512F (z by one FMA, a cheaper exp and
 * reciprocal), for rows rounded to bf16 next; = glad_groupnorm_silu_row elsewhere */
void glad_groupnorm_silu_row_coarse(float *o, const float *x, int n, float ga, float be);
void glad_groupnorm_silu_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
                                  const float *mean, const float *rstd, const float *gamma, const float *beta, int B,
                                  int C, int N, int G, double *ws, int dxmode);

/* ---- LayerNorm over the last dim D of (M, D) ---- */
void glad_layernorm_forward(float *out, const float *x, const float *gamma, const float *beta, int M, int D, float eps);
/* statistics are recomputed from x (no saved state) */
void glad_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *gamma,
                             int M, int D, float eps);

/* ---- BatchNorm over (B, C, N), training mode: batch statistics (biased
 * variance), saves mean and rstd (C each); run_mean / run_var (may be NULL)
 * updated as torch.nn.BatchNorm2d with `momentum` (unbiased variance,
 * M = B*N values per channel). The backward includes the statistics'
 * gradients; dx may be NULL. ---- */
void glad_batchnorm_train_forward(float *out, float *mean, float *rstd, float *run_mean, float *run_var, const float *x,
                                  const float *gamma, const float *beta, int B, int C, int N, float eps, float momentum);
void glad_batchnorm_train_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, int B, int C, int N);

/* ---- activations (elementwise, n values) ---- */
void glad_relu_forward(float *out, const float *x, size_t n);               /* out may be x */
void glad_relu_backward(float *dx, const float *dout, const float *y, size_t n);   /* y: output or input */
void glad_silu_forward(float *out, const float *x, size_t n);
void glad_silu_backward(float *dx, const float *dout, const float *x, size_t n);
void glad_gelu_forward(float *out, const float *x, size_t n);              /* exact erf form */
void glad_gelu_backward(float *dx, const float *dout, const float *x, size_t n);

/* ---- resampling (B*C planes of H x W) ---- */
void glad_avgpool2_forward(float *out, const float *x, int BC, int H, int W);     /* 2x2 stride 2 */
void glad_avgpool2_backward(float *dx, const float *dout, int BC, int H, int W);
void glad_upsample2_forward(float *out, const float *x, int BC, int H, int W);    /* nearest x2 */
void glad_upsample2_backward(float *dx, const float *dout, int BC, int H, int W);
void glad_maxpool3s2_forward(float *out, const float *x, int BC, int H, int W);   /* 3x3 s2 p1 (ResNet) */
/* x: the forward's input; the gradient goes to each window's first maximum */
void glad_maxpool3s2_backward(float *dx, const float *dout, const float *x, int BC, int H, int W);

/* ---- channel concat of a (B,Ca,N) and b (B,Cb,N) ---- */
void glad_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, size_t N);
void glad_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, size_t N);

/* ---- legacy QKV attention (guided diffusion): qkv (B, 3C, T) with heads the
 * outer index of the 3C channels, each head's q, k, v (c = C/heads rows each)
 * consecutive; q and k scaled by c^(-1/4); softmax over keys.
 * out (B, C, T); att, when not NULL, saves the weights for the backward:
 * B*heads*T*T floats, in a layout of the pair's own (attention.c).
 * ws: T*T floats forward, 3*T*T backward. ---- */
void glad_attention_forward(float *out, float *att, const float *qkv, int B, int C, int T, int heads, float *ws);
void glad_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int C, int T,
                             int heads, float *ws);

/* ---- multi-head self-attention on token rows (ViT layout): qkv (T, 3D),
 * columns [3][heads][hd]; out (T, D) = concat_h softmax(hd^-1/2 Q_h K_h^T) V_h.
 * The backward recomputes the softmax (nothing saved) and accumulates into
 * dqkv. ws: glad_mhsa_workspace(T, heads) floats (per head, so results do not
 * depend on the thread count). ---- */
size_t glad_mhsa_workspace(int T, int heads);
void glad_mhsa_forward(float *out, const float *qkv, int T, int D, int heads, float *ws);
void glad_mhsa_backward(float *dqkv, const float *dout, const float *qkv, int T, int D, int heads, float *ws);

/* ---- softmax over the last dim of (M, D), in place ---- */
void glad_softmax_rows(float *x, int M, int D);

/* ---- seeded dropout: keep with probability 1-p, scale 1/(1-p); the mask is
 * glad_rng_uniform_at(seed, index) >= p (lib/core/rng), so it is
 * reproducible and thread-independent ---- */
void glad_dropout_forward(float *out, const float *x, size_t n, float p, uint64_t seed);
void glad_dropout_backward(float *dx, const float *dout, size_t n, float p, uint64_t seed);

/* ---- sinusoidal timestep embedding: out (B, dim) = [sin(t f_i) ; cos(t f_i)],
 * f_i = exp(-ln(10000) i / half), half = dim/2 ---- */
void glad_timestep_embedding(float *out, const float *t, int B, int dim);

/* ---- optimisers over a flat parameter array ---- */
typedef struct {
    float lr, beta1, beta2, eps, wd;
    int decoupled;     /* 0: Adam with L2 (torch.optim.Adam weight_decay), 1: AdamW */
} glad_adam_cfg;
/* step counts from 1; m and v are the caller's state arrays (n each) */
void glad_adam_step(float *p, const float *g, float *m, float *v, size_t n, const glad_adam_cfg *c, long step);
/* global L2 norm of a gradient array (for clipping) */
double glad_sumsq(const float *g, size_t n);
/* g *= max_norm / (norm + 1e-6) when its L2 norm exceeds max_norm (as
 * torch.nn.utils.clip_grad_norm_); returns the norm before clipping */
double glad_clip_grad_norm(float *g, size_t n, double max_norm);
/* exponential moving average of weights: avg = decay avg + (1 - decay) w */
void glad_ema_update(float *avg, const float *w, size_t n, float decay);

/* ---- arena: a bump allocator of 64-byte aligned floats, growing in blocks,
 * reset without freeing, so the memory of a training step is reused ---- */
typedef struct glad_arena_block glad_arena_block;
typedef struct {
    glad_arena_block *head, *cur;
    size_t block_floats, used_bytes, peak_bytes;
} glad_arena;
void glad_arena_init(glad_arena *a, size_t block_floats);
float *glad_arena_alloc(glad_arena *a, size_t n);      /* NULL on OOM */
float *glad_arena_zalloc(glad_arena *a, size_t n);
void glad_arena_reset(glad_arena *a);
void glad_arena_free(glad_arena *a);

/* ---- depthwise conv (mobilenet) ---- */
/* channels-last (H,W,C) images (TFLite layout, unlike the NCHW kernels
 * above): output channel c*mult+m convolves input channel c with w
 * (kh,kw,C*mult); stride, dilation, explicit top/left padding (the output
 * size Ho x Wo fixes the bottom/right), bias (may be NULL), clamp to [lo,hi] */
void glad_depthwise_nhwc_forward(float *out, const float *x, const float *w, const float *b, int H, int W, int C,
                                 int mult, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left,
                                 int Ho, int Wo, float lo, float hi);

/* conv2d on channels-last (H,W,C) with TFLite weights (OC,kh,kw,C): im2col +
 * sgemm, same padding/dilation/bias/clamp conventions as the depthwise, then
 * + res (Ho,Wo,OC) when res is not NULL (a fused residual ADD);
 * ws holds glad_conv2d_nhwc_workspace floats (0 when direct: 1x1, stride 1,
 * no padding) */
size_t glad_conv2d_nhwc_workspace(int C, int kh, int kw, int Ho, int Wo, int direct);
void glad_conv2d_nhwc_forward(float *out, const float *x, const float *w, const float *b, const float *res, int H,
                              int W, int C, int OC, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top,
                              int pad_left, int Ho, int Wo, float lo, float hi, float *ws);
/* the same with wt = w^T (kh*kw*C, OC) (glad_conv2d_nhwc_wt), kept by a
 * caller that runs the same weights again, or NULL: in fp32 on an AVX-512F
 * CPU the GEMM reads w^T (transposed per call without wt) */
void glad_conv2d_nhwc_forward_wt(float *out, const float *x, const float *w, const float *wt, const float *b,
                                 const float *res, int H, int W, int C, int OC, int kh, int kw, int sh, int sw, int dh,
                                 int dw, int pad_top, int pad_left, int Ho, int Wo, float lo, float hi, float *ws);
/* wt (K, OC) = w^T for weights w (OC, K), K = kh*kw*C */
void glad_conv2d_nhwc_wt(float *wt, const float *w, int OC, int K);

/* MobileNetV2's inverted-residual block on channels-last x (H,W,C) in one
 * pass: e = clamp(x we^T + be, elo, ehi) (the 1x1 expansion to Ce channels,
 * we (Ce, C) its weights, or NULL: no expansion, e = x), d = the depthwise
 * conv of e (weights wd (kh,kw,Ce), bias bd, padding, stride, dilation as
 * glad_depthwise_nhwc_forward, mult 1, clamp [dlo, dhi]), y (Ho,Wo,Co) = d
 * wp^T + bp (+ res (Ho,Wo,Co) when not NULL), wp (Co, Ce) the projection's
 * weights; biases may be NULL. In fp32 wet (C, Ce) and wpt (Ce, Co) are the
 * weights transposed (glad_conv2d_nhwc_wt; needed there); in bf16
 * (nn/bf16.h) the two GEMMs take bf16 operands with fp32 sums, their
 * weights packed from we and wp into the bf16 cache in use (or per call
 * without one), wet and wpt unused (may be NULL), the depthwise conv sums
 * fp32 on e rounded to bf16 when Ce is even (e is then stored in bf16).
 * ws holds glad_invres_nhwc_workspace floats (for omp_get_max_threads()
 * threads). Runs only on AVX-512F CPUs: otherwise GLAD_EUNSUPPORTED and
 * nothing done (the caller runs the three convolutions); GLAD_ENOMEM when
 * the bf16 weights cannot be allocated. The numbers are those of the three
 * convolutions run one by one in the same precision (in bf16 with e rounded
 * to bf16 in between when Ce is even). */
size_t glad_invres_nhwc_workspace(int H, int W, int Ce, int kh, int sh, int dh, int Ho, int Wo);
int glad_invres_nhwc_forward(float *y, const float *x, const float *we, const float *wet, const float *be, float elo,
                             float ehi, const float *wd, const float *bd, int kh, int kw, int sh, int sw, int dh, int dw,
                             int pt, int pl, float dlo, float dhi, const float *wp, const float *wpt, const float *bp,
                             const float *res, int H, int W, int C, int Ce, int Ho, int Wo, int Co, float *ws);
/* A conv (the stem: MobileNetV2's first conv) of x (H,W,C) with weights w
 * (OC,kh,kw,C), bias b, stride, dilation, padding before, clamp [lo, hi];
 * wt (kh kw C, OC) = w^T (glad_conv2d_nhwc_wt), read in fp32 (may be NULL
 * in bf16). */
typedef struct {
    const float *x, *w, *b;
    int H, W, C, kh, kw, sh, sw, dh, dw, pt, pl;
    float lo, hi;
    const float *wt;
} glad_invres_stem;
/* The block without expansion whose input e (H,W,Ce) is the stem's output,
 * in one pass with it: the stem computed band by band in place of the
 * expansion, so its output never goes to memory. Otherwise as
 * glad_invres_nhwc_forward (ws as glad_invres_nhwc_workspace(H, W, Ce, ...);
 * wpt needed in fp32, as st->wt). The numbers are those of the stem
 * (glad_conv2d_nhwc_forward), then the block, in the precision in use; in
 * bf16 the stem's output rounded to bf16 in between. GLAD_EUNSUPPORTED
 * (nothing done) without AVX-512F, in fp32 without st->wt or wpt, in bf16
 * for odd Ce, or for a stem with kh kw C over 12288: the caller runs the
 * stem, then the block. */
int glad_invres_nhwc_forward_stem(float *y, const glad_invres_stem *st, const float *wd, const float *bd, int kh, int kw,
                                  int sh, int sw, int dh, int dw, int pt, int pl, float dlo, float dhi, const float *wp,
                                  const float *wpt, const float *bp, const float *res, int H, int W, int Ce, int Ho, int Wo,
                                  int Co, float *ws);

/* Either of the two above in steps, so that a caller can run several blocks
 * in one parallel region, a barrier between them instead of a region each
 * (a region wakes the sleeping threads and waits for them; under
 * OMP_WAIT_POLICY=passive each costs tens of microseconds, a MobileNetV2
 * forward had 19 of them): glad_invres_nhwc_prepare(_stem) takes the
 * arguments of glad_invres_nhwc_forward(_stem), makes the same checks with
 * the same return codes and packs the weights, reading no activation;
 * glad_invres_nhwc_run is then called by every thread t of the nt of a
 * team (all of them: it may hold a barrier; nt at most omp_get_max_threads()
 * at prepare's time, for ws), with every buffer the arguments named still
 * there; glad_invres_nhwc_done frees what prepare made (after a failed
 * prepare there is nothing to free). The numbers are the one-call
 * functions'. Fields: invres.c's; par (the team shares the block; else its
 * first thread runs it alone) and chan (split by channels) may be read. */
typedef struct {
    float *y, *ws;
    const float *x, *res, *be, *wd, *bd, *bp, *et, *ptw;
    const uint16_t *eq, *pq;
    size_t eldq, pldq, per;
    glad_invres_stem st;
    float elo, ehi, dlo, dhi;
    int has_st, has_exp, kh, kw, sh, sw, dh, dw, pt, pl, H, W, C, Ce, Ho, Wo, Co, d16, e16, nb, er, par, chan;
    uint16_t *eown, *pown;
    float *wdq;
} glad_invres_plan;
int glad_invres_nhwc_prepare(glad_invres_plan *p, float *y, const float *x, const float *we, const float *wet,
                             const float *be, float elo, float ehi, const float *wd, const float *bd, int kh, int kw, int sh,
                             int sw, int dh, int dw, int pt, int pl, float dlo, float dhi, const float *wp, const float *wpt,
                             const float *bp, const float *res, int H, int W, int C, int Ce, int Ho, int Wo, int Co, float *ws);
int glad_invres_nhwc_prepare_stem(glad_invres_plan *p, float *y, const glad_invres_stem *st, const float *wd, const float *bd,
                                  int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, float dlo, float dhi,
                                  const float *wp, const float *wpt, const float *bp, const float *res, int H, int W, int Ce,
                                  int Ho, int Wo, int Co, float *ws);
void glad_invres_nhwc_run(const glad_invres_plan *p, int t, int nt);
void glad_invres_nhwc_done(glad_invres_plan *p);

/* ---- memory plan: offsets (in floats, 64-byte aligned) of tensors inside
 * one buffer, from a replay of their allocations and frees in order; top is
 * the buffer size needed, live the floats allocated now ---- */
typedef struct { size_t off, len; } glad_memplan_span;
typedef struct {
    glad_memplan_span *span;    /* free spans below top, sorted by offset */
    int nspan, cap;
    size_t top, live;
} glad_memplan;
void glad_memplan_init(glad_memplan *m);
int glad_memplan_alloc(glad_memplan *m, size_t n, size_t *off);   /* 0 */
int glad_memplan_free(glad_memplan *m, size_t off, size_t n);     /* 0, -1 on OOM */
void glad_memplan_release(glad_memplan *m);

#endif
