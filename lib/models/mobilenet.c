/* mobilenet.c - runs the float32 graph of a MobileNetV2 .tflite (tflite.h) on
 * one image: shapes are inferred for the actual input size (any H x W for
 * the convolutional part), activations are channels-last (H,W,C) in a small
 * pool of buffers reused across runs (a tensor's buffer returns to the pool
 * after its last reader), convolutions are im2col + sgemm and depthwise convs
 * direct (lib/nn); on AVX-512F CPUs each inverted-residual block
 * ([1x1 expansion,] depthwise, linear 1x1 projection, residual ADD) runs in
 * one pass (glad_invres_nhwc_forward), in fp32 with the same numbers as op
 * by op, and in bf16 (its 1x1 GEMMs on bf16 operands, the weights packed
 * once in the model's cache, the expanded activations rounded to bf16 at the
 * depthwise conv's input, which op by op does not; the first conv runs
 * inside the block after it, glad_invres_nhwc_forward_stem, its output
 * rounded to bf16 likewise); consecutive blocks run in one parallel region
 * (flush below). TF semantics: "SAME" output ceil(in/s), pad_total =
 * max((out-1)s + (k-1)d + 1 - in, 0), pad_before = pad_total/2 (the extra row
 * and column at the bottom/right); "VALID" output (in - (k-1)d - 1)/s + 1;
 * AVERAGE_POOL_2D divides by the taps inside the image; QUANTIZE, DEQUANTIZE
 * and RESHAPE copy. Activation quantisation is ignored (float graph). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "models/mobilenet.h"
#include "nn/bf16.h"
#include "nn/nn.h"
#include "io/tflite.h"

#define NPOOL 32
#define NCHAIN 32   /* blocks run in one parallel region at most */

typedef struct { int rank; int d[GLAD_TFLITE_MAX_DIMS]; size_t n; } rshape;

struct glad_mobilenet {
    glad_tflite_model *g;
    int in_t, out_t, H0, W0, nclasses;
    int nblocks, blk_t[GLAD_MOBILENET_MAX_BLOCKS], blk_op[GLAD_MOBILENET_MAX_BLOCKS];
    int blk_stride[GLAD_MOBILENET_MAX_BLOCKS], blk_c[GLAD_MOBILENET_MAX_BLOCKS];
    int *producer, *slot, *last, *have;
    rshape *rs;
    float *pool[NPOOL];
    size_t pcap[NPOOL];
    int pbusy[NPOOL];
    float *ws;
    size_t wscap;
    double flops;
    glad_invres_plan chain[NCHAIN];   /* fused blocks prepared, not yet run (flush) */
    int nchain;
    const float *tsrc;   /* the input transpose, not yet run (flush): tsrc (3,H,W) into tdst (H,W,3) when not NULL */
    float *tdst;
    int tH, tW;
    glad_bf16_cache *bc;   /* bf16 weights of the convolutions (nn/bf16.h), packed once */
    float **wt;            /* per op: a CONV_2D's weights transposed (K, OC) for the fp32 GEMM, made on first use */
};

static const glad_tflite_tensor *T(const glad_mobilenet *m, int t) { return &m->g->tensors[t]; }
static int is_const(const glad_mobilenet *m, int t) { return t >= 0 && T(m, t)->data != NULL; }

static int set_shape(rshape *s, int rank, const int *d)
{
    size_t n = 1;
    s->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (d[i] < 0 || glad_mul_size(n, (size_t)d[i], &n)) return GLAD_ESHAPE;
        s->d[i] = d[i];
    }
    if (n > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ERANGE;
    s->n = n;
    return 0;
}

/* TF padding: output size and padding before, for one spatial dim */
static int tf_pad(int in, int k, int s, int d, int padding, int *out, int *before)
{
    if (s < 1 || d < 1 || k < 1 || s > 65536 || d > 65536 || k > 65536) return GLAD_ESHAPE;
    long eff = (long)(k - 1) * d + 1;
    if (padding == GLAD_TFL_PAD_SAME) {
        long o = ((long)in + s - 1) / s, tot = (o - 1) * s + eff - in;
        *out = (int)o;
        *before = tot > 0 ? (int)(tot / 2) : 0;
    } else {
        if (in < eff) return GLAD_ESHAPE;
        *out = (int)((in - eff) / s + 1);
        *before = 0;
    }
    return *out >= 1 ? 0 : GLAD_ESHAPE;
}

/* an integer constant stored as float (axes, shapes, paddings): in [lo, hi] and whole */
static int f2i(float v, int lo, int hi, int *out)
{
    if (!(v >= (float)lo && v <= (float)hi) || v != floorf(v)) return GLAD_EFORMAT;
    *out = (int)v;
    return 0;
}

static void clamp_of(int act, float *lo, float *hi)
{
    *lo = -INFINITY; *hi = INFINITY;
    if (act == GLAD_TFL_ACT_RELU) *lo = 0;
    else if (act == GLAD_TFL_ACT_RELU6) { *lo = 0; *hi = 6; }
    else if (act == GLAD_TFL_ACT_RELU_N1_TO_1) { *lo = -1; *hi = 1; }
}

/* shape of a tensor as an input of op i: a runtime tensor already produced, or a constant */
static int in_shape(const glad_mobilenet *m, const rshape *rs, const int *have, int t, const rshape **s, int i)
{
    if (t < 0 || t >= m->g->ntensors) return glad_fail(GLAD_EFORMAT, "operator %d: missing input", i);
    if (!have[t]) return glad_fail(GLAD_EFORMAT, "operator %d: tensor %d read before it is computed", i, t);
    *s = &rs[t];
    return 0;
}

/* Infer runtime shapes (rs, have: one per tensor) for an H x W input through ops 0..stop; validates
 * every operator's operands (constants present, shapes agreeing). */
static int infer(const glad_mobilenet *m, rshape *rs, int *have, int H, int W, int stop)
{
    const glad_tflite_model *g = m->g;
    int rc;
    for (int t = 0; t < g->ntensors; t++) {
        have[t] = is_const(m, t);
        if (have[t] && (rc = set_shape(&rs[t], T(m, t)->ndim, T(m, t)->shape)))
            return glad_fail(rc, "tensor %d: constant of a negative or too large shape", t);
    }
    int d4[4] = {1, H, W, 3};
    if ((rc = set_shape(&rs[m->in_t], 4, d4))) return glad_fail(rc, "input of %d x %d: negative or too large", H, W);
    have[m->in_t] = 1;
    for (int i = 0; i <= stop; i++) {
        const glad_tflite_op *op = &g->ops[i];
        const rshape *x = NULL, *w;
        const char *name = glad_tflite_op_name(op->code);
        if (op->nin < 1 || op->nout < 1) return glad_fail(GLAD_EFORMAT, "operator %d (%s): no input or output", i, name);
        int o = op->out[0];
        if (o < 0 || have[o]) return glad_fail(GLAD_EFORMAT, "operator %d (%s): output tensor invalid or written twice", i, name);
        GLAD_TRY(in_shape(m, rs, have, op->in[0], &x, i));
        rshape *y = &rs[o];
        rc = 0;
        switch (op->code) {
        case GLAD_TFL_CONV_2D:
        case GLAD_TFL_DEPTHWISE_CONV_2D: {
            int dw = op->code == GLAD_TFL_DEPTHWISE_CONV_2D;
            if (op->nin < 2 || !is_const(m, op->in[1])) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (%s): weights are not a constant", i, name);
            w = &rs[op->in[1]];
            if (x->rank != 4 || x->d[0] != 1 || w->rank != 4) return glad_fail(GLAD_ESHAPE, "operator %d (%s): needs (1,H,W,C) input and 4-d weights", i, name);
            int C = x->d[3], OC = dw ? w->d[3] : w->d[0];
            if (dw ? (w->d[0] != 1 || C == 0 || OC % C != 0) : (w->d[3] != C))
                return glad_fail(GLAD_ESHAPE, "operator %d (%s): weights do not match %d input channels", i, name, C);
            if (op->nin >= 3 && op->in[2] >= 0) {
                if (!is_const(m, op->in[2]) || rs[op->in[2]].n != (size_t)OC)
                    return glad_fail(GLAD_ESHAPE, "operator %d (%s): bias is not a constant of %d values", i, name, OC);
            }
            int Ho, Wo, pt, pl;
            if (w->d[1] < 1 || w->d[2] < 1 || tf_pad(x->d[1], w->d[1], op->stride_h, op->dilation_h, op->padding, &Ho, &pt) ||
                tf_pad(x->d[2], w->d[2], op->stride_w, op->dilation_w, op->padding, &Wo, &pl))
                return glad_fail(GLAD_ESHAPE, "operator %d (%s): input %dx%d too small", i, name, x->d[1], x->d[2]);
            int od[4] = {1, Ho, Wo, OC};
            rc = set_shape(y, 4, od);
            break;
        }
        case GLAD_TFL_AVERAGE_POOL_2D: {
            int Ho, Wo, pt, pl;
            if (x->rank != 4 || x->d[0] != 1) return glad_fail(GLAD_ESHAPE, "operator %d (%s): needs (1,H,W,C)", i, name);
            if (tf_pad(x->d[1], op->filter_h, op->stride_h, 1, op->padding, &Ho, &pt) ||
                tf_pad(x->d[2], op->filter_w, op->stride_w, 1, op->padding, &Wo, &pl))
                return glad_fail(GLAD_ESHAPE, "operator %d (%s): input %dx%d smaller than the %dx%d window", i, name,
                                 x->d[1], x->d[2], op->filter_h, op->filter_w);
            int od[4] = {1, Ho, Wo, x->d[3]};
            rc = set_shape(y, 4, od);
            break;
        }
        case GLAD_TFL_ADD: {
            const rshape *x2 = NULL;
            if (op->nin < 2) return glad_fail(GLAD_EFORMAT, "operator %d (ADD): one input", i);
            GLAD_TRY(in_shape(m, rs, have, op->in[1], &x2, i));
            if (x2->rank != x->rank || memcmp(x2->d, x->d, sizeof(int) * (size_t)x->rank) != 0)
                return glad_fail(GLAD_EUNSUPPORTED, "operator %d (ADD): broadcasting is not supported", i);
            rc = set_shape(y, x->rank, x->d);
            break;
        }
        case GLAD_TFL_MEAN: {
            if (op->nin < 2 || !is_const(m, op->in[1])) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (MEAN): axes not constant", i);
            const glad_tflite_tensor *ax = T(m, op->in[1]);
            int mask = 0;
            for (size_t k = 0; k < ax->numel; k++) {
                int a;
                if (f2i(ax->data[k], -GLAD_TFLITE_MAX_DIMS, GLAD_TFLITE_MAX_DIMS, &a)) return glad_fail(GLAD_EFORMAT, "operator %d (MEAN): bad axis", i);
                if (a < 0) a += x->rank;
                if (a < 0 || a >= x->rank) return glad_fail(GLAD_EFORMAT, "operator %d (MEAN): axis out of range", i);
                mask |= 1 << a;
            }
            if (x->rank != 4 || x->d[0] != 1 || mask != 6)
                return glad_fail(GLAD_EUNSUPPORTED, "operator %d (MEAN): only the spatial mean of (1,H,W,C)", i);
            int kd[4] = {1, 1, 1, x->d[3]}, nd[2] = {1, x->d[3]};
            rc = op->keep_dims ? set_shape(y, 4, kd) : set_shape(y, 2, nd);
            break;
        }
        case GLAD_TFL_RESHAPE: {
            int nd[GLAD_TFLITE_MAX_DIMS], r = 0, inf = -1;
            if (op->nin >= 2 && op->in[1] >= 0 && is_const(m, op->in[1])) {
                const glad_tflite_tensor *st = T(m, op->in[1]);
                if (st->numel > GLAD_TFLITE_MAX_DIMS) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (RESHAPE): rank", i);
                for (size_t k = 0; k < st->numel; k++)
                    if (f2i(st->data[k], -1, INT32_MAX / 2, &nd[r++])) return glad_fail(GLAD_EFORMAT, "operator %d (RESHAPE): bad shape", i);
            } else {
                for (int k = 0; k < op->nnew_shape; k++) nd[r++] = op->new_shape[k];
            }
            size_t known = 1;
            for (int k = 0; k < r; k++) {
                if (nd[k] == -1 && inf < 0) { inf = k; continue; }
                if (nd[k] < 0 || glad_mul_size(known, (size_t)nd[k], &known)) return glad_fail(GLAD_EFORMAT, "operator %d (RESHAPE): bad shape", i);
            }
            if (inf >= 0) {
                if (known == 0 || x->n % known || x->n / known > INT32_MAX) return glad_fail(GLAD_ESHAPE, "operator %d (RESHAPE): %zu elements", i, x->n);
                nd[inf] = (int)(x->n / known);
                known = x->n;
            }
            if (known != x->n) return glad_fail(GLAD_ESHAPE, "operator %d (RESHAPE): %zu elements into %zu (graph made for another input size)", i, x->n, known);
            rc = set_shape(y, r, nd);
            break;
        }
        case GLAD_TFL_PAD: {
            if (op->nin < 2 || !is_const(m, op->in[1])) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (PAD): paddings not constant", i);
            const glad_tflite_tensor *p = T(m, op->in[1]);
            if (x->rank != 4 || x->d[0] != 1 || p->numel != 8) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (PAD): only (1,H,W,C)", i);
            int nd[4];
            for (int k = 0; k < 4; k++) {
                int a, c;
                if (f2i(p->data[2 * k], 0, 1024, &a) || f2i(p->data[2 * k + 1], 0, 1024, &c) || (k == 0 && (a != 0 || c != 0)) ||
                    x->d[k] > INT32_MAX - 2048)
                    return glad_fail(GLAD_EUNSUPPORTED, "operator %d (PAD): padding %g,%g on dim %d", i, p->data[2 * k], p->data[2 * k + 1], k);
                nd[k] = x->d[k] + a + c;
            }
            rc = set_shape(y, 4, nd);
            break;
        }
        case GLAD_TFL_FULLY_CONNECTED: {
            if (op->nin < 2 || !is_const(m, op->in[1])) return glad_fail(GLAD_EUNSUPPORTED, "operator %d (FULLY_CONNECTED): weights not constant", i);
            w = &rs[op->in[1]];
            if (w->rank != 2 || w->d[1] == 0 || x->n % (size_t)w->d[1]) return glad_fail(GLAD_ESHAPE, "operator %d (FULLY_CONNECTED): weight shape", i);
            if (op->nin >= 3 && op->in[2] >= 0 && (!is_const(m, op->in[2]) || rs[op->in[2]].n != (size_t)w->d[0]))
                return glad_fail(GLAD_ESHAPE, "operator %d (FULLY_CONNECTED): bias", i);
            int nd[2] = {(int)(x->n / (size_t)w->d[1]), w->d[0]};
            rc = set_shape(y, 2, nd);
            break;
        }
        case GLAD_TFL_SOFTMAX:
            if (x->rank < 1 || x->d[x->rank - 1] < 1) return glad_fail(GLAD_ESHAPE, "operator %d (SOFTMAX): empty", i);
            rc = set_shape(y, x->rank, x->d);
            break;
        case GLAD_TFL_QUANTIZE:
        case GLAD_TFL_DEQUANTIZE:
            rc = set_shape(y, x->rank, x->d);
            break;
        default:
            return glad_fail(GLAD_EUNSUPPORTED, "operator %d: %s is not supported", i, name);
        }
        if (rc) return glad_fail(rc, "operator %d (%s): output shape too large", i, name);
        have[o] = 1;
    }
    return 0;
}

/* ---- the pending blocks: consecutive fused blocks are prepared one by one
 * (their buffers taken from the pool as op by op) and run together in one
 * parallel region, a barrier between blocks instead of a region each (19 a
 * forward, each waking the threads: tens of microseconds apiece under
 * OMP_WAIT_POLICY=passive). They run before any other op, at the end of
 * run_ops, and before a buffer they may point to is freed (pool_get's and
 * ensure_ws's reallocation); a released buffer that a later block takes
 * over is written after the earlier blocks have read it, as op by op. ---- */

/* the pending steps forgotten, their plans' buffers freed (after flush ran them, or when run_ops fails) */
static void drop(glad_mobilenet *m)
{
    for (int k = 0; k < m->nchain; k++) glad_invres_nhwc_done(&m->chain[k]);
    m->nchain = 0;
    m->tsrc = NULL;
}

static void flush(glad_mobilenet *m)
{
    if (!m->nchain && !m->tsrc) return;
    int n = m->nchain, H = m->tH, W = m->tW;
    size_t HW = (size_t)H * W;
    /* the input transpose first (when pending), split when it is large */
    int tpar = m->tsrc && HW > 32768, par = tpar;
    for (int k = 0; k < n; k++) par |= m->chain[k].par;
    // each thread its part of every step, a barrier between steps (each reads what the other threads wrote before)
    #pragma omp parallel if (par)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        if (m->tsrc && (tpar || t == 0)) {
            /* (3,H,W) -> (H,W,3), split by rows like the blocks after it, whose threads then read rows their own core
             * wrote */
            int r0 = tpar ? (int)((long)H * t / nt) : 0, r1 = tpar ? (int)((long)H * (t + 1) / nt) : H;
            for (size_t p = (size_t)r0 * W; p < (size_t)r1 * W; p++)
                for (int c = 0; c < 3; c++) m->tdst[p * 3 + c] = m->tsrc[c * HW + p];
        }
        for (int k = 0; k < n; k++) {
            /* block k reads rows of the step before it that the other threads wrote */
            if (k || m->tsrc) {
                #pragma omp barrier
            }
            glad_invres_nhwc_run(&m->chain[k], t, nt);
        }
    }
    drop(m);
}

/* a free slot in the chain (the pending blocks run when it is full) */
static glad_invres_plan *chain_slot(glad_mobilenet *m)
{
    if (m->nchain == NCHAIN) flush(m);
    return &m->chain[m->nchain];
}

/* ---- buffer pool ---- */
static int pool_get(glad_mobilenet *m, size_t n, int *slot)
{
    int best = -1, any = -1;
    for (int k = 0; k < NPOOL; k++) {
        if (m->pbusy[k]) continue;
        if (m->pcap[k] >= n && (best < 0 || m->pcap[k] < m->pcap[best])) best = k;
        if (any < 0 || m->pcap[k] > m->pcap[any]) any = k;
    }
    if (best < 0) {
        if (any < 0) return GLAD_EUNSUPPORTED;      /* more live tensors than the pool holds */
        flush(m);   /* a pending block may still read the freed buffer */
        free(m->pool[any]);
        m->pool[any] = malloc((n ? n : 1) * sizeof(float));
        m->pcap[any] = m->pool[any] ? n : 0;
        if (!m->pool[any]) return GLAD_ENOMEM;
        best = any;
    }
    m->pbusy[best] = 1;
    *slot = best;
    return 0;
}

static float *act(const glad_mobilenet *m, int t) { return is_const(m, t) ? T(m, t)->data : m->pool[m->slot[t]]; }

static void release(glad_mobilenet *m, int t)
{
    if (t >= 0 && m->slot[t] >= 0) { m->pbusy[m->slot[t]] = 0; m->slot[t] = -1; }
}

static int ensure_ws(glad_mobilenet *m, size_t n)
{
    if (n <= m->wscap) return 0;
    flush(m);
    free(m->ws);
    m->ws = malloc(n * sizeof(float));
    m->wscap = m->ws ? n : 0;
    return m->ws ? 0 : GLAD_ENOMEM;
}

/* fp32: conv i's weights transposed (K, OC), kept across runs; NULL in
 * bf16 or without memory for them (the conv then transposes per call) */
static const float *wt_of(glad_mobilenet *m, int i)
{
    if (glad_precision_get() != GLAD_PREC_F32 || !m->wt) return NULL;
    const glad_tflite_op *op = &m->g->ops[i];
    const rshape *ws = &m->rs[op->in[1]];
    int OC = ws->d[0], K = ws->d[1] * ws->d[2] * ws->d[3];
    if (!m->wt[i] && (m->wt[i] = malloc(sizeof(float) * (size_t)OC * K))) glad_conv2d_nhwc_wt(m->wt[i], T(m, op->in[1])->data, OC, K);
    return m->wt[i];
}

/* op i into tensor o (its own output, or that of a fused ADD adding res) */
static int run_op(glad_mobilenet *m, int i, int o, const float *res)
{
    const glad_tflite_op *op = &m->g->ops[i];
    const rshape *xs = &m->rs[op->in[0]], *ys = &m->rs[o];
    const float *x = act(m, op->in[0]);
    float *y = act(m, o), lo, hi;
    clamp_of(op->act, &lo, &hi);
    switch (op->code) {
    case GLAD_TFL_CONV_2D:
    case GLAD_TFL_DEPTHWISE_CONV_2D: {
        const rshape *ws = &m->rs[op->in[1]];
        const float *w = act(m, op->in[1]), *b = op->nin >= 3 && op->in[2] >= 0 ? act(m, op->in[2]) : NULL;
        int H = xs->d[1], W = xs->d[2], C = xs->d[3], Ho = ys->d[1], Wo = ys->d[2], OC = ys->d[3], kh = ws->d[1], kw = ws->d[2];
        int t, pt = 0, pl = 0;
        tf_pad(H, kh, op->stride_h, op->dilation_h, op->padding, &t, &pt);
        tf_pad(W, kw, op->stride_w, op->dilation_w, op->padding, &t, &pl);
        m->flops += 2.0 * Ho * Wo * OC * kh * kw * (op->code == GLAD_TFL_CONV_2D ? C : 1);
        if (op->code == GLAD_TFL_DEPTHWISE_CONV_2D) {
            if (res) return GLAD_EINVAL;
            glad_depthwise_nhwc_forward(y, x, w, b, H, W, C, OC / C, kh, kw, op->stride_h, op->stride_w, op->dilation_h,
                                        op->dilation_w, pt, pl, Ho, Wo, lo, hi);
        } else {
            int direct = kh == 1 && kw == 1 && op->stride_h == 1 && op->stride_w == 1 && pt == 0 && pl == 0 && Ho == H && Wo == W;
            GLAD_TRY(ensure_ws(m, glad_conv2d_nhwc_workspace(C, kh, kw, Ho, Wo, direct)));
            glad_conv2d_nhwc_forward_wt(y, x, w, wt_of(m, i), b, res, H, W, C, OC, kh, kw, op->stride_h, op->stride_w,
                                        op->dilation_h, op->dilation_w, pt, pl, Ho, Wo, lo, hi, m->ws);
        }
        break;
    }
    case GLAD_TFL_AVERAGE_POOL_2D: {
        int H = xs->d[1], W = xs->d[2], C = xs->d[3], Ho = ys->d[1], Wo = ys->d[2], t, pt = 0, pl = 0, fh = op->filter_h, fw = op->filter_w;
        tf_pad(H, fh, op->stride_h, 1, op->padding, &t, &pt);
        tf_pad(W, fw, op->stride_w, 1, op->padding, &t, &pl);
        // each output pixel is written by one iteration
        #pragma omp parallel for schedule(static) if ((long)Ho * Wo * C * fh * fw > 100000)
        for (int p = 0; p < Ho * Wo; p++) {
            int i0 = p / Wo * op->stride_h - pt, j0 = p % Wo * op->stride_w - pl, cnt = 0;
            float *yo = y + (size_t)p * C;
            memset(yo, 0, sizeof(float) * (size_t)C);
            for (int yy = i0 < 0 ? 0 : i0; yy < i0 + fh && yy < H; yy++)
                for (int xx = j0 < 0 ? 0 : j0; xx < j0 + fw && xx < W; xx++, cnt++) {
                    const float *xp = x + ((size_t)yy * W + xx) * C;
                    for (int c = 0; c < C; c++) yo[c] += xp[c];
                }
            for (int c = 0; c < C; c++) { float v = cnt ? yo[c] / cnt : 0; yo[c] = v < lo ? lo : v > hi ? hi : v; }
        }
        break;
    }
    case GLAD_TFL_ADD: {
        const float *x2 = act(m, op->in[1]);
        size_t n = ys->n;
        // elementwise
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t k = 0; k < n; k++) { float v = x[k] + x2[k]; y[k] = v < lo ? lo : v > hi ? hi : v; }
        break;
    }
    case GLAD_TFL_MEAN: {
        size_t HW = (size_t)xs->d[1] * xs->d[2];
        int C = xs->d[3];
        // channels are independent
        #pragma omp parallel for schedule(static) if (HW * C > 100000)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (size_t p = 0; p < HW; p++) s += x[p * C + c];
            y[c] = (float)(s / (double)HW);
        }
        break;
    }
    case GLAD_TFL_SOFTMAX: {
        int D = xs->d[xs->rank - 1];
        size_t rows = xs->n / (size_t)D;
        for (size_t r = 0; r < rows; r++) {
            const float *xr = x + r * D;
            float *yr = y + r * D, mx = xr[0];
            for (int k = 1; k < D; k++) mx = xr[k] > mx ? xr[k] : mx;
            double s = 0;
            /* softmax(beta x)_k = exp(beta (x_k - max)) / sum (for beta > 0; the max only guards overflow) */
            for (int k = 0; k < D; k++) { yr[k] = expf(op->beta * (xr[k] - mx)); s += yr[k]; }
            for (int k = 0; k < D; k++) yr[k] = (float)(yr[k] / s);
        }
        break;
    }
    case GLAD_TFL_PAD: {
        const float *p = T(m, op->in[1])->data;
        int H = xs->d[1], W = xs->d[2], C = xs->d[3], Wo = ys->d[2], top = (int)p[2], left = (int)p[4], cl = (int)p[6];
        int Co = ys->d[3];
        memset(y, 0, ys->n * sizeof(float));
        for (int i2 = 0; i2 < H; i2++)
            for (int j = 0; j < W; j++)
                memcpy(y + (((size_t)(i2 + top) * Wo + j + left) * Co + cl), x + ((size_t)i2 * W + j) * C, sizeof(float) * (size_t)C);
        break;
    }
    case GLAD_TFL_FULLY_CONNECTED: {
        const rshape *ws = &m->rs[op->in[1]];
        const float *w = act(m, op->in[1]), *b = op->nin >= 3 && op->in[2] >= 0 ? act(m, op->in[2]) : NULL;
        int O = ws->d[0], I = ws->d[1], B = ys->d[0];
        for (int r = 0; r < B; r++)
            for (int k = 0; k < O; k++) {
                double s = b ? b[k] : 0;
                for (int q = 0; q < I; q++) s += (double)x[(size_t)r * I + q] * w[(size_t)k * I + q];
                float v = (float)s;
                y[(size_t)r * O + k] = v < lo ? lo : v > hi ? hi : v;
            }
        m->flops += 2.0 * B * O * I;
        break;
    }
    default:   /* QUANTIZE, DEQUANTIZE, RESHAPE: identities on float data (run_ops passes the buffer on instead where
                * nothing reads the input afterwards, as for the graph's QUANTIZE at the input) */
        memcpy(y, x, ys->n * sizeof(float));
        break;
    }
    return 0;
}

/* op i+1 when it is an ADD without activation that is the one reader of
 * conv i's output (not a tensor the caller keeps), else -1 */
static int fusable_add(const glad_mobilenet *m, int i, int stop)
{
    const glad_tflite_op *op = &m->g->ops[i], *a = op + 1;
    if (op->code != GLAD_TFL_CONV_2D || i + 1 > stop || a->code != GLAD_TFL_ADD || a->act != GLAD_TFL_ACT_NONE || a->nin != 2)
        return -1;
    int t = op->out[0];
    if ((a->in[0] == t) == (a->in[1] == t) || m->last[t] != i + 1) return -1;
    for (int j = i + 2; j <= stop; j++)
        for (int k = 0; k < m->g->ops[j].nin; k++)
            if (m->g->ops[j].in[k] == t) return -1;
    return i + 1;
}

/* op i is a 1x1 stride-1 CONV_2D (so unpadded) */
static int is_pointwise(const glad_mobilenet *m, int i)
{
    const glad_tflite_op *op = &m->g->ops[i];
    if (op->code != GLAD_TFL_CONV_2D || op->nin < 2) return 0;
    const rshape *w = &m->rs[op->in[1]];
    return w->rank == 4 && w->d[1] == 1 && w->d[2] == 1 && op->stride_h == 1 && op->stride_w == 1;
}

/* op j reads op j-1's output, the one reader of it (not a tensor the caller keeps) */
static int chained(const glad_mobilenet *m, int j)
{
    int t = m->g->ops[j - 1].out[0];
    return m->g->ops[j].in[0] == t && m->last[t] == j;
}

/* the last op of the inverted-residual block starting at op i that
 * glad_invres_nhwc_forward can run in one pass ([1x1 expansion,] depthwise
 * mult 1, 1x1 projection without activation, inside 0..stop), else -1 */
static int invres_end(const glad_mobilenet *m, int i, int stop)
{
    const glad_tflite_model *g = m->g;
    int d = i + (is_pointwise(m, i) ? 1 : 0);
    if (d + 1 > stop || (d > i && !chained(m, d)) || g->ops[d].code != GLAD_TFL_DEPTHWISE_CONV_2D || !chained(m, d + 1) ||
        !is_pointwise(m, d + 1) || g->ops[d + 1].act != GLAD_TFL_ACT_NONE)
        return -1;
    if (m->rs[g->ops[d].out[0]].d[3] != m->rs[g->ops[d].in[0]].d[3]) return -1;   /* mult 1 */
    return d + 1;
}

/* ops i..p (invres_end) into tensor o (+ res), in one pass; GLAD_EUNSUPPORTED when this CPU or precision does not run it */
static int run_invres(glad_mobilenet *m, int i, int p, int o, const float *res)
{
    const glad_tflite_op *e = &m->g->ops[i], *d = &m->g->ops[p - 1], *q = &m->g->ops[p];
    const rshape *xs = &m->rs[e->in[0]], *ds = &m->rs[d->out[0]], *ws = &m->rs[d->in[1]];
    int H = xs->d[1], W = xs->d[2], C = xs->d[3], Ce = ds->d[3], Ho = ds->d[1], Wo = ds->d[2], Co = m->rs[o].d[3];
    int kh = ws->d[1], kw = ws->d[2], t, pt, pl, ex = p - i == 2;
    tf_pad(H, kh, d->stride_h, d->dilation_h, d->padding, &t, &pt);
    tf_pad(W, kw, d->stride_w, d->dilation_w, d->padding, &t, &pl);
    /* fp32 reads the weights transposed (wt_of: NULL in bf16, whose packed copies invres.c takes from m->bc) */
    const float *wet = ex ? wt_of(m, i) : NULL, *wpt = wt_of(m, p);
    if (glad_precision_get() == GLAD_PREC_F32 && ((ex && !wet) || !wpt)) return GLAD_EUNSUPPORTED;
    float elo, ehi, dlo, dhi;
    clamp_of(e->act, &elo, &ehi);
    clamp_of(d->act, &dlo, &dhi);
    GLAD_TRY(ensure_ws(m, glad_invres_nhwc_workspace(H, W, Ce, kh, d->stride_h, d->dilation_h, Ho, Wo)));
#define BIAS(op) ((op)->nin >= 3 && (op)->in[2] >= 0 ? act(m, (op)->in[2]) : NULL)
    int rc = glad_invres_nhwc_prepare(chain_slot(m), act(m, o), act(m, e->in[0]), ex ? act(m, e->in[1]) : NULL, wet,
                                      ex ? BIAS(e) : NULL, elo, ehi, act(m, d->in[1]), BIAS(d), kh, kw, d->stride_h,
                                      d->stride_w, d->dilation_h, d->dilation_w, pt, pl, dlo, dhi, act(m, q->in[1]), wpt,
                                      BIAS(q), res, H, W, C, Ce, Ho, Wo, Co, m->ws);
#undef BIAS
    if (rc == 0) {
        m->nchain++;
        m->flops += 2.0 * Ce * ((ex ? (double)H * W * C : 0) + (double)Ho * Wo * (kh * kw + Co));
    }
    return rc;
}

/* conv i (the stem) and the block i+1..p after it (no expansion; i's output read by i+1 alone) into tensor o (+ res)
 * in one pass, the stem's output never in memory; GLAD_EUNSUPPORTED when this CPU or precision does not run it */
static int run_stem(glad_mobilenet *m, int i, int p, int o, const float *res)
{
    const glad_tflite_op *c = &m->g->ops[i], *d = &m->g->ops[p - 1], *q = &m->g->ops[p];
    const rshape *xs = &m->rs[c->in[0]], *cs = &m->rs[c->in[1]], *es = &m->rs[c->out[0]], *ds = &m->rs[d->out[0]];
    const rshape *ws = &m->rs[d->in[1]];
    int H = es->d[1], W = es->d[2], Ce = es->d[3], Ho = ds->d[1], Wo = ds->d[2], Co = m->rs[o].d[3];
    int kh = ws->d[1], kw = ws->d[2], t, pt, pl;
#define BIAS(op) ((op)->nin >= 3 && (op)->in[2] >= 0 ? act(m, (op)->in[2]) : NULL)
    glad_invres_stem st = {act(m, c->in[0]), act(m, c->in[1]), BIAS(c), xs->d[1], xs->d[2], xs->d[3], cs->d[1], cs->d[2],
                           c->stride_h, c->stride_w, c->dilation_h, c->dilation_w, 0, 0, 0.0f, 0.0f, wt_of(m, i)};
    /* fp32 reads both convs' weights transposed (wt_of: NULL in bf16) */
    const float *wpt = wt_of(m, p);
    if (glad_precision_get() == GLAD_PREC_F32 && (!st.wt || !wpt)) return GLAD_EUNSUPPORTED;
    tf_pad(st.H, st.kh, st.sh, st.dh, c->padding, &t, &st.pt);
    tf_pad(st.W, st.kw, st.sw, st.dw, c->padding, &t, &st.pl);
    clamp_of(c->act, &st.lo, &st.hi);
    tf_pad(H, kh, d->stride_h, d->dilation_h, d->padding, &t, &pt);
    tf_pad(W, kw, d->stride_w, d->dilation_w, d->padding, &t, &pl);
    float dlo, dhi;
    clamp_of(d->act, &dlo, &dhi);
    GLAD_TRY(ensure_ws(m, glad_invres_nhwc_workspace(H, W, Ce, kh, d->stride_h, d->dilation_h, Ho, Wo)));
    int rc = glad_invres_nhwc_prepare_stem(chain_slot(m), act(m, o), &st, act(m, d->in[1]), BIAS(d), kh, kw, d->stride_h,
                                           d->stride_w, d->dilation_h, d->dilation_w, pt, pl, dlo, dhi, act(m, q->in[1]), wpt,
                                           BIAS(q), res, H, W, Ce, Ho, Wo, Co, m->ws);
#undef BIAS
    if (rc == 0) {
        m->nchain++;
        m->flops += 2.0 * H * W * Ce * st.kh * st.kw * st.C + 2.0 * Ce * Ho * Wo * (kh * kw + Co);
    }
    return rc;
}

/* the tensor o that ops ending with conv p write (the output of the ADD
 * fused after it, res its other input, or p's own output, res NULL); returns
 * the last op they cover */
static int ops_out(const glad_mobilenet *m, int p, int stop, int *o, const float **res)
{
    int add = fusable_add(m, p, stop);
    *o = m->g->ops[p].out[0];
    *res = NULL;
    if (add < 0) return p;
    const glad_tflite_op *a = &m->g->ops[add];
    *res = act(m, a->in[0] == *o ? a->in[1] : a->in[0]);
    *o = a->out[0];
    return add;
}

/* run ops 0..stop on x (3,H,W) CHW; tensors in keep[0..nk) stay live */
static int run_ops(glad_mobilenet *m, const float *x, int H, int W, int stop, const int *keep, int nk)
{
    const glad_tflite_model *g = m->g;
    GLAD_TRY(infer(m, m->rs, m->have, H, W, stop));
    for (int t = 0; t < g->ntensors; t++) { m->slot[t] = -1; m->last[t] = -1; }
    for (int k = 0; k < NPOOL; k++) m->pbusy[k] = 0;
    for (int i = 0; i <= stop; i++)
        for (int k = 0; k < g->ops[i].nin; k++)
            if (g->ops[i].in[k] >= 0) m->last[g->ops[i].in[k]] = i;
    for (int k = 0; k < nk; k++) m->last[keep[k]] = stop + 1;
    m->flops = 0;
    int rc, in = m->in_t;
    GLAD_TRY(pool_get(m, m->rs[in].n, &m->slot[in]));
    /* x (3,H,W) into its buffer (H,W,3): pending, run in the region of the blocks after it (flush) */
    m->tsrc = x, m->tdst = m->pool[m->slot[in]], m->tH = H, m->tW = W;
    for (int i = 0; i <= stop; i++) {
        const glad_tflite_op *op = &g->ops[i];
        int xi = op->nin >= 1 ? op->in[0] : -1, yo = op->nout >= 1 ? op->out[0] : -1;
        for (int k = 1; k < op->nin; k++) xi = op->in[k] < 0 || is_const(m, op->in[k]) ? xi : -1;
        if ((op->code == GLAD_TFL_QUANTIZE || op->code == GLAD_TFL_DEQUANTIZE || op->code == GLAD_TFL_RESHAPE) && xi >= 0 &&
            yo >= 0 && yo != xi && !is_const(m, xi) && m->slot[xi] >= 0 && m->slot[yo] < 0 && m->last[xi] == i &&
            m->rs[yo].n == m->rs[xi].n) {
            /* an identity on float data (run_op's copy) whose input nothing reads after it: the output takes over the
             * input's buffer, no copy (the graph's QUANTIZE at the input) */
            m->slot[yo] = m->slot[xi];
            m->slot[xi] = -1;
            if (m->last[yo] < 0 && i < stop) release(m, yo);
            continue;
        }
        /* a whole inverted-residual block in one pass where the CPU runs it,
         * else conv i alone (op by op); either way the residual ADD fused */
        int blk = invres_end(m, i, stop), o, nfused, stem = 0;
        /* a conv whose output only a block without expansion reads (MobileNetV2's first conv) runs inside it */
        if (blk < 0 && op->code == GLAD_TFL_CONV_2D && i < stop && invres_end(m, i + 1, stop) == i + 2 && chained(m, i + 1)) {
            blk = i + 2;
            stem = 1;
        }
        const float *res;
        for (;;) {
            nfused = ops_out(m, blk >= 0 ? blk : i, stop, &o, &res) - i + 1;
            GLAD_TRYG(rc, pool_get(m, m->rs[o].n, &m->slot[o]), fail);
            if (blk < 0 || (rc = stem ? run_stem(m, i, blk, o, res) : run_invres(m, i, blk, o, res)) == 0) break;
            if (rc != GLAD_EUNSUPPORTED) goto fail;
            release(m, o);
            blk = -1;
            stem = 0;
        }
        if (blk < 0) {
            flush(m);   /* the blocks before it first */
            GLAD_TRYG(rc, run_op(m, i, o, res), fail);
        }
        for (int f = 0; f < nfused; f++, op++)
            for (int k = 0; k < op->nin; k++)
                if (op->in[k] >= 0 && m->last[op->in[k]] == i + f && !is_const(m, op->in[k])) release(m, op->in[k]);
        i += nfused - 1;
        if (m->last[o] < 0 && i < stop) release(m, o);   /* never read: a graph output we do not want */
    }
    flush(m);
    return 0;
fail:
    drop(m);
    return rc;
}

/* run_ops with, in bf16, the model's cache of packed weights in use (the
 * weights of a loaded graph never change) */
static int run(glad_mobilenet *m, const float *x, int H, int W, int stop, const int *keep, int nk)
{
    int bf = glad_precision_get() == GLAD_PREC_BF16;
    if (bf && !m->bc) m->bc = glad_bf16_cache_new();
    glad_bf16_cache *prev = bf ? glad_bf16_cache_use(m->bc) : NULL;
    int rc = run_ops(m, x, H, W, stop, keep, nk);
    if (bf) glad_bf16_cache_use(prev);
    return rc;
}

/* ---- graph analysis ---- */
static int find_blocks(glad_mobilenet *m)
{
    const glad_tflite_model *g = m->g;
    int *stride = calloc((size_t)g->ntensors, sizeof(int));
    if (!stride) return glad_fail(GLAD_ENOMEM, "out of memory");
    stride[m->in_t] = 1;
    m->nblocks = 0;
    for (int i = 0; i < g->nops; i++) {
        const glad_tflite_op *op = &g->ops[i];
        int s = stride[op->in[0]] ? stride[op->in[0]] : 1;
        if (op->code == GLAD_TFL_CONV_2D || op->code == GLAD_TFL_DEPTHWISE_CONV_2D || op->code == GLAD_TFL_AVERAGE_POOL_2D)
            s *= op->stride_h;
        if (s > 1 << 20) s = 1 << 20;
        stride[op->out[0]] = s;
        if (op->code != GLAD_TFL_CONV_2D || op->act != GLAD_TFL_ACT_NONE) continue;
        const glad_tflite_tensor *w = T(m, op->in[1]);
        int p = m->producer[op->in[0]];
        if (w->ndim != 4 || w->shape[1] != 1 || w->shape[2] != 1 || p < 0 || g->ops[p].code != GLAD_TFL_DEPTHWISE_CONV_2D) continue;
        /* the projection; the block ends at the residual ADD when that is its one reader */
        int t = op->out[0], end = i, readers = 0, add = -1;
        for (int j = i + 1; j < g->nops; j++)
            for (int k = 0; k < g->ops[j].nin; k++)
                if (g->ops[j].in[k] == t) { readers++; if (g->ops[j].code == GLAD_TFL_ADD) add = j; }
        if (readers == 1 && add >= 0) { end = add; t = g->ops[add].out[0]; }
        if (m->nblocks == GLAD_MOBILENET_MAX_BLOCKS) { free(stride); return glad_fail(GLAD_EUNSUPPORTED, "more than %d blocks", GLAD_MOBILENET_MAX_BLOCKS); }
        m->blk_op[m->nblocks] = end;
        m->blk_t[m->nblocks] = t;
        m->blk_c[m->nblocks] = w->shape[0];
        m->nblocks++;
    }
    for (int k = 0; k < m->nblocks; k++) m->blk_stride[k] = stride[g->ops[m->blk_op[k]].out[0]];
    free(stride);
    if (m->nblocks == 0) return glad_fail(GLAD_EUNSUPPORTED, "no inverted-residual block (depthwise conv followed by a linear 1x1 conv) in the graph");
    return 0;
}

int glad_mobilenet_from_model(glad_mobilenet **out, glad_tflite_model *model, const char *path)
{
    *out = NULL;
    if (!path) path = "model";
    glad_mobilenet *m = calloc(1, sizeof *m);
    if (!m) { glad_tflite_free(model); return glad_fail(GLAD_ENOMEM, "%s: out of memory", path); }
    int rc;
    m->g = model;
    const glad_tflite_model *g = m->g;
    /* the model struct is public: indices are checked again here */
    for (int i = 0; i < g->nops; i++) {
        const glad_tflite_op *op = &g->ops[i];
        int ok = op->nin >= 0 && op->nin <= GLAD_TFLITE_MAX_IO && op->nout >= 0 && op->nout <= GLAD_TFLITE_MAX_IO;
        for (int k = 0; ok && k < op->nin; k++) ok = op->in[k] >= -1 && op->in[k] < g->ntensors;
        for (int k = 0; ok && k < op->nout; k++) ok = op->out[k] >= -1 && op->out[k] < g->ntensors;
        if (!ok) { rc = glad_fail(GLAD_EFORMAT, "%s: operator %d has a tensor index out of range", path, i); goto bad; }
    }
    for (int k = 0; k < g->nin + g->nout; k++) {
        int t = k < g->nin ? g->inputs[k] : g->outputs[k - g->nin];
        if (t < 0 || t >= g->ntensors) { rc = glad_fail(GLAD_EFORMAT, "%s: graph input/output out of range", path); goto bad; }
    }
    if (g->nin != 1 || g->nout < 1 || g->nops < 1) { rc = glad_fail(GLAD_EUNSUPPORTED, "%s: needs one input and an output", path); goto bad; }
    /* weights must be numbers: a NaN or inf would pass through every feature */
    for (int t = 0; t < g->ntensors; t++) {
        const glad_tflite_tensor *x = T(m, t);
        int fin = 1;
        for (size_t k = 0; x->data && k < x->numel; k++) fin &= isfinite(x->data[k]) != 0;
        if (!fin) { rc = glad_fail(GLAD_ENAN, "%s: tensor %d ('%s') has non-finite values", path, t, x->name ? x->name : ""); goto bad; }
    }
    m->in_t = g->inputs[0];
    m->out_t = g->outputs[0];
    const glad_tflite_tensor *in = T(m, m->in_t);
    if (in->ndim != 4 || in->shape[0] != 1 || in->shape[3] != 3 || is_const(m, m->in_t)) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "%s: input is not a (1,H,W,3) image", path);
        goto bad;
    }
    m->H0 = in->shape[1];
    m->W0 = in->shape[2];
    size_t nt = (size_t)g->ntensors;
    m->producer = malloc(nt * sizeof(int));
    m->slot = malloc(nt * sizeof(int));
    m->last = malloc(nt * sizeof(int));
    m->have = malloc(nt * sizeof(int));
    m->rs = calloc(nt, sizeof(rshape));
    m->wt = calloc((size_t)g->nops, sizeof(float *));
    if (!m->producer || !m->slot || !m->last || !m->have || !m->rs || !m->wt) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path); goto bad; }
    for (size_t t = 0; t < nt; t++) m->producer[t] = -1;
    for (int i = 0; i < g->nops; i++) if (g->ops[i].nout >= 1 && g->ops[i].out[0] >= 0) m->producer[g->ops[i].out[0]] = i;
    /* the whole graph must be runnable at its own input size */
    if ((rc = infer(m, m->rs, m->have, m->H0, m->W0, g->nops - 1))) goto bad_in;
    if (m->producer[m->out_t] < 0) { rc = glad_fail(GLAD_EFORMAT, "%s: the output is not computed", path); goto bad; }
    m->nclasses = (int)m->rs[m->out_t].n;
    if ((rc = find_blocks(m))) goto bad_in;
    *out = m;
    return 0;
bad_in: {   /* a step that does not know the path: its detail prefixed with it */
        char *d = glad_strfmt("%s: %s", path, glad_error_detail());
        if (d) glad_fail(rc, "%s", d);
        free(d);
    }
bad:
    glad_mobilenet_free(m);
    return rc;
}

int glad_mobilenet_load(glad_mobilenet **out, const char *path)
{
    glad_tflite_model *g;
    *out = NULL;
    GLAD_TRY(glad_tflite_load(&g, path));
    return glad_mobilenet_from_model(out, g, path);
}

void glad_mobilenet_free(glad_mobilenet *m)
{
    if (!m) return;
    for (int i = 0; m->wt && i < m->g->nops; i++) free(m->wt[i]);
    free(m->wt);
    glad_tflite_free(m->g);
    free(m->producer); free(m->slot); free(m->last); free(m->have); free(m->rs);
    for (int k = 0; k < NPOOL; k++) free(m->pool[k]);
    free(m->ws);
    glad_bf16_cache_free(m->bc);
    free(m);
}

int glad_mobilenet_nblocks(const glad_mobilenet *m) { return m->nblocks; }
int glad_mobilenet_nclasses(const glad_mobilenet *m) { return m->nclasses; }
double glad_mobilenet_last_flops(const glad_mobilenet *m) { return m->flops; }

int glad_mobilenet_block_channels(const glad_mobilenet *m, int blk)
{
    return blk < 0 || blk >= m->nblocks ? GLAD_EINVAL : m->blk_c[blk];
}

int glad_mobilenet_block_stride(const glad_mobilenet *m, int blk)
{
    return blk < 0 || blk >= m->nblocks ? GLAD_EINVAL : m->blk_stride[blk];
}

int glad_mobilenet_default_blocks(const glad_mobilenet *m, int *blocks)
{
    int n = 0, b8 = -1, b16 = -1;
    for (int k = 0; k < m->nblocks; k++) {
        if (m->blk_stride[k] == 8) b8 = k;
        if (m->blk_stride[k] == 16) b16 = k;
    }
    if (b8 >= 0) blocks[n++] = b8;
    if (b16 >= 0) blocks[n++] = b16;
    return n;
}

int glad_mobilenet_out_shape(const glad_mobilenet *m, int blk, int H, int W, int *C, int *h, int *w)
{
    if (blk < 0 || blk >= m->nblocks || H < 1 || W < 1) return GLAD_EINVAL;
    size_t nt = (size_t)m->g->ntensors;
    rshape *rs = malloc(nt * sizeof *rs);
    int *have = malloc(nt * sizeof *have), rc = GLAD_ENOMEM;
    if (rs && have && (rc = infer(m, rs, have, H, W, m->blk_op[blk])) == 0) {
        const rshape *s = &rs[m->blk_t[blk]];
        if (s->rank != 4) rc = GLAD_ESHAPE;
        else { *C = s->d[3]; *h = s->d[1]; *w = s->d[2]; }
    }
    free(rs);
    free(have);
    return rc;
}

int glad_mobilenet_features(glad_mobilenet *m, const float *x, int H, int W, int nb, const int *blocks, float **out)
{
    if (nb < 1 || nb > GLAD_MOBILENET_MAX_BLOCKS || H < 1 || W < 1) return GLAD_EINVAL;
    int keep[GLAD_MOBILENET_MAX_BLOCKS], stop = 0;
    for (int k = 0; k < nb; k++) {
        if (blocks[k] < 0 || blocks[k] >= m->nblocks) return GLAD_EINVAL;
        keep[k] = m->blk_t[blocks[k]];
        if (m->blk_op[blocks[k]] > stop) stop = m->blk_op[blocks[k]];
    }
    GLAD_TRY(run(m, x, H, W, stop, keep, nb));
    for (int k = 0; k < nb; k++) {
        const rshape *s = &m->rs[keep[k]];
        const float *a = act(m, keep[k]);
        size_t hw = (size_t)s->d[1] * s->d[2];
        int C = s->d[3];
        float *o = out[k];
        /* (h,w,C) -> (C,h,w) */
        // each channel plane is written by one iteration
        #pragma omp parallel for schedule(static) if (hw * C > 100000)
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < hw; p++) o[(size_t)c * hw + p] = a[p * C + c];
    }
    return 0;
}

int glad_mobilenet_classify(glad_mobilenet *m, const float *x, int H, int W, float *probs)
{
    if (H < 1 || W < 1) return GLAD_EINVAL;
    int stop = m->producer[m->out_t];
    GLAD_TRY(run(m, x, H, W, stop, &m->out_t, 1));
    if (m->rs[m->out_t].n != (size_t)m->nclasses) return GLAD_ESHAPE;
    memcpy(probs, act(m, m->out_t), (size_t)m->nclasses * sizeof(float));
    return 0;
}
