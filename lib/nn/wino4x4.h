/* wino4x4.h - Winograd F(4x4,3x3) 3x3 convolution for AVX-512F (wino4x4.c).
 * Private to lib/nn: wino3x3.c hands it the shapes glad_wino4x4_ok and
 * glad_wino4x4_dw_ok accept; same layouts and contract as wino3x3.h. */
#ifndef GLAD_NN_WINO4X4_H
#define GLAD_NN_WINO4X4_H

#include <stddef.h>
#include "nn/winoblk.h"

/* H and W multiples of 4, NO % 8 == 0, NI >= 16, H W >= 1024 */
int glad_wino4x4_ok(int NI, int H, int W, int NO);
size_t glad_wino4x4_weight_floats(int NI, int NO);
void glad_wino4x4_weights(float *U, const float *w, int NI, int NO, int flip);
/* its block kernels, for glad_wino_drive (wino3x3.c runs it) */
extern const glad_wino_kernel glad_wino4x4_kernel;

/* weight gradient: H, W multiples of 4, C % 32 == 0, OC % 16 == 0, H W >= 1024 */
int glad_wino4x4_dw_ok(int C, int H, int W, int OC);
extern const glad_wino_dwkernel glad_wino4x4_dwkernel;
void glad_wino4x4_dw_finish(float *dw, const float *scr, int nth, int C, int OC);

#endif
