/* wino3x3.h - fused Winograd F(2x2,3x3) 3x3 convolution for AVX-512F
 * (wino3x3.c). Private to lib/nn: conv3x3.c picks it for the shapes
 * glad_wino3x3_ok accepts when the CPU has AVX-512F. */
#ifndef GLAD_NN_WINO3X3_H
#define GLAD_NN_WINO3X3_H

#include <stddef.h>

/* NI inputs, NO outputs, H x W: H and W even, NO % 8 == 0, NI >= 16, H W >= 256 */
int glad_wino3x3_ok(int NI, int H, int W, int NO);
/* the two below and glad_wino3x3_run hand planes glad_wino4x4_ok accepts to
 * F(4x4,3x3) (wino4x4.c), whose weights are larger */
size_t glad_wino3x3_weight_floats(int NI, int H, int W, int NO);
/* U for a conv with NI inputs and NO outputs from w (NO,NI,3,3); flip: from
 * w (NI,NO,3,3) transposed and flipped (the input gradient of that conv) */
void glad_wino3x3_weights(float *U, const float *w, int NI, int H, int W, int NO, int flip);
/* out (NO,H,W) = conv of xp (NI padded planes) + bias (accumulate: out +=,
 * no bias); GLAD_ENOMEM, out untouched, when a thread's 8 KB x (NI + 8) scratch failed */
int glad_wino3x3_run(float *out, const float *xp, const float *U, const float *bias, int NI, int H, int W, int NO,
                     int accumulate);

/* weight gradient: H, W even, C % 32 == 0, OC % 16 == 0 */
int glad_wino3x3_dw_ok(int C, int H, int W, int OC);
/* floats of one thread's scratch (its partial dU and transforms) */
size_t glad_wino3x3_dw_floats(int C, int H, int W, int OC);
/* adds one image's dU into the nth zeroed thread scratches of scr; xt is x
 * (C,H,W) channels-last with a zero border ((H+2) x (W+2) positions of C
 * floats, 64-byte aligned), dyt dout alike with OC */
void glad_wino3x3_dw_image(float *scr, int nth, const float *xt, const float *dyt, int C, int H, int W, int OC);
/* dw (OC,C,3,3) += G^T dU G, dU the thread partials summed in order */
void glad_wino3x3_dw_finish(float *dw, const float *scr, int nth, int C, int H, int W, int OC);

#endif
