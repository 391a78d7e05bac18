/* winoblk.h - the block driver both fused Winograd convolutions run in
 * (winoblk.c): wino3x3.c's F(2x2,3x3) and wino4x4.c's F(4x4,3x3) each give
 * a kernel (their transforms, as a table of functions) and the driver does
 * the rest: the runs of tiles a block of consecutive tiles covers, the
 * threaded loop that takes a plane block by block (input transform, then per
 * 8 output channels the products and the output transform), or band by
 * band of rows the caller pads per band, the row writes,
 * and the weight gradient's block loop over per-thread partials. Which kernel
 * a shape gets is conv3x3.c's choice, not the driver's. Private to lib/nn. */
#ifndef GLAD_NN_WINOBLK_H
#define GLAD_NN_WINOBLK_H

#include <stddef.h>
#include "nn/nn.h"

/* the stride of a transform plane of n floats: one cache line more, so the
 * planes a transform writes at once do not share an L1 set (4 KB apart);
 * U, V and the driver's V sizes all use it */
static inline size_t glad_wino_plane(size_t n) { return n + 16; }

/* filters from which the weight transforms (U = G g G^T) and the weight
 * gradient's finish (G^T dU G) run threaded: a filter takes ~0.1 us, a
 * parallel region a few; at 4096, the DDAD-S training step at 128
 * transformed its convs of 1024-4096 filters on one thread, 0.2 ms each at
 * 4096, while the other waited */
enum { GLAD_WINO_PAR_FILTERS = 256 };

/* a run of L tiles of one tile row: tile row ti, first tile column tj, lane s */
typedef struct { int ti, tj, s, L; } glad_wino_seg;

/* the rows of an output channel's tiles oc (H x W, row width W) from y, m
 * rows ys apart of m floats per lane (tile): written + bv (then + *ev when
 * ev, then rc + that when rc, the channel's plane of a residual), or added.
 * Inline so each kernel's output transform gets it with its m fixed. */
static inline void glad_wino_put(float *oc, const float *y, int ys, int m, int W, float bv, const float *ev, const float *rc,
                                 const glad_wino_seg *sg, int nseg, int accumulate)
{
    for (int k = 0; k < nseg; k++) {
        const glad_wino_seg *q = &sg[k];
        for (int r = 0; r < m; r++) {
            size_t at = (size_t)(m * q->ti + r) * W + m * q->tj;
            float *row = oc + at;
            const float *yr = y + (size_t)r * ys + m * q->s;
            /* the epilogue (nn.h's glad_conv_epi) in the adds' order, a
             * loop per case: one loop with the cases as conditions was
             * vectorised with rc's loads masked off when NULL, and masked
             * loads from an unmapped address take a microcode assist
             * (3.6x slower for the whole conv) */
            if (accumulate) for (int j = 0; j < m * q->L; j++) row[j] += yr[j];
            else if (!ev && !rc) for (int j = 0; j < m * q->L; j++) row[j] = yr[j] + bv;
            else if (!rc) {
                float e = *ev;
                for (int j = 0; j < m * q->L; j++) row[j] = (yr[j] + bv) + e;
            } else if (!ev) {
                const float *rr = rc + at;
                for (int j = 0; j < m * q->L; j++) row[j] = rr[j] + (yr[j] + bv);
            } else {
                const float *rr = rc + at;
                float e = *ev;
                for (int j = 0; j < m * q->L; j++) row[j] = rr[j] + ((yr[j] + bv) + e);
            }
        }
    }
}

/* glad_wino_put for output channel o of out (NO,H,W) with bias and the
 * epilogue epi of this image (emb: its NO values, res: its (NO,H,W); NULL:
 * none) */
static inline void glad_wino_put_ch(float *out, const float *y, int ys, int m, int H, int W, const float *bias, const glad_conv_epi *epi,
                                    int o, const glad_wino_seg *sg, int nseg, int accumulate)
{
    size_t plane = (size_t)H * W;
    glad_wino_put(out + o * plane, y, ys, m, W, bias ? bias[o] : 0.0f, epi && epi->emb ? epi->emb + o : NULL,
                  epi && epi->res ? epi->res + o * plane : NULL, sg, nseg, accumulate);
}

/* a kernel: tile side m (output m x m), ne = (m + 2)^2 transform planes, nt
 * tiles per block (<= 32). weights writes U (ne planes of
 * glad_wino_plane(NI NO) floats) for a conv with NI inputs and NO outputs
 * from w (NO,NI,3,3), or with flip from w (NI,NO,3,3) transposed and flipped
 * (the input gradient of that conv). Per block V takes ne planes of
 * glad_wino_plane(NI nt) floats and M ne 8 nt. input writes V from the
 * zero-bordered planes xp (row width Wp); gemm writes M for output block ob
 * of nob; output writes (or adds) out rows of output channels o0 .. o0 + 7,
 * with epilogue epi (glad_wino_put_ch) when writing */
typedef struct {
    int m, ne, nt;
    void (*weights)(float *U, const float *w, int NI, int NO, int flip);
    void (*input)(float *V, const float *xp, int NI, int H, int Wp, const glad_wino_seg *sg, int nseg, int nt);
    void (*gemm)(float *M, const float *V, const float *U, int NI, int nob, int ob);
    void (*output)(float *out, const float *M, const float *bias, const glad_conv_epi *epi, int o0, int H, int W,
                   const glad_wino_seg *sg, int nseg, int accumulate);
} glad_wino_kernel;

/* floats of U for NI inputs and NO outputs */
size_t glad_wino_weight_floats(const glad_wino_kernel *k, int NI, int NO);
/* a thread's scratch of floats (64-byte aligned), all or none: called by
 * every thread of a parallel region (it holds a barrier), each gets own
 * when given, else a new buffer it frees when it differs from own; NULL for
 * all (nothing kept) when any thread's allocation failed, *fail then set */
float *glad_wino_team_scratch(float *own, size_t floats, int *fail);

/* out (NO,H,W) = the kernel's convolution of xp ((NI, H+2, W+2) zero-bordered
 * planes) with U + bias, then epilogue epi (NULL: none; emb and res of
 * this image) (accumulate: out +=, no bias nor epilogue); GLAD_ENOMEM, out
 * untouched, when a thread's scratch failed */
int glad_wino_drive(const glad_wino_kernel *k, float *out, const float *xp, const float *U, const float *bias, const glad_conv_epi *epi,
                    int NI, int H, int W, int NO, int accumulate);
/* the same (out =, + bias, epilogue) band by band of at most bh output rows (a
 * multiple of m): the threads take slabs of whole tile rows, each band by
 * band through its own buffer of a band's padded rows, (NI, bh + 2, W + 2)
 * at xp + th NI (bh + 2) (W + 2) for thread th (xp has room for
 * omp_get_max_threads() of them), so the rows stay in its cache.
 * rows(ctx, xb, bh, r0, q0, q1), called by the thread alone, makes padded
 * rows q0 .. q1 - 1 (at row q - r0 of buffer xb) of the band from output
 * row r0 (the rows before q0 are there: the driver moves the previous
 * band's last two up). Each output sums as in the whole-plane call, bit
 * for bit. */
typedef void (*glad_wino_rows)(void *ctx, float *xp, int bh, int r0, int q0, int q1);
int glad_wino_drive_bands(const glad_wino_kernel *k, float *out, float *xp, int bh, glad_wino_rows rows, void *ctx, const float *U,
                          const float *bias, const glad_conv_epi *epi, int NI, int H, int W, int NO);

/* the weight gradient's transforms (vectors of 16 channels, channels-last):
 * btdb writes the ne vectors of B^T d B from the (m+2)^2 patch p[r rs + c cs]
 * to v + e vs, adya the ne of A dY A^T from the m x m dout patch; finish
 * adds G^T dU G to dw (OC,C,3,3), dU the nth thread partials of scr (each
 * glad_wino_dw_floats) summed in thread order */
typedef struct {
    int m, ne;
    void (*btdb)(float *v, size_t vs, const float *p, size_t rs, size_t cs);
    void (*adya)(float *d, size_t ds, const float *p, size_t rs, size_t cs);
    void (*finish)(float *dw, const float *scr, int nth, int C, int OC);
} glad_wino_dwkernel;

/* floats of one thread's weight-gradient scratch: its partial dU (ne, OC, C),
 * the transforms of a block of 32 tiles and their bf16 pair rows */
size_t glad_wino_dw_floats(const glad_wino_dwkernel *k, int C, int OC);
/* adds one image's dU into the nth zeroed thread scratches of scr; xt is x
 * (C,H,W) channels-last with a zero border ((H+2) x (W+2) positions of C
 * floats, 64-byte aligned), dyt dout alike with OC. With bf16 (nn/bf16k.h:
 * only in bf16 precision) the products over the tiles take bf16 operands */
void glad_wino_dw_drive(const glad_wino_dwkernel *k, float *scr, int nth, const float *xt, const float *dyt, int C, int H, int W,
                        int OC, int bf16);

#endif
