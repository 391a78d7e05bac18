/* wino3x3.h - the Winograd F(2x2,3x3) kernels of wino3x3.c for the block
 * driver (winoblk.h), AVX-512F only. Private to lib/nn: conv3x3.c picks them
 * for the shapes glad_wino3x3_ok / glad_wino3x3_dw_ok accept when the CPU
 * has AVX-512F (and wino4x4.h's do not). */
#ifndef GLAD_NN_WINO3X3_H
#define GLAD_NN_WINO3X3_H

#include "nn/winoblk.h"

/* NI inputs, NO outputs, H x W: H and W even, NO % 8 == 0, NI >= 16, H W >= 256 */
int glad_wino3x3_ok(int NI, int H, int W, int NO);
extern const glad_wino_kernel glad_wino3x3_kernel;

/* weight gradient: H, W even, C % 32 == 0, OC % 16 == 0 */
int glad_wino3x3_dw_ok(int C, int H, int W, int OC);
extern const glad_wino_dwkernel glad_wino3x3_dwkernel;

#endif
