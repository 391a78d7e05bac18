/* wino4x4.h - the Winograd F(4x4,3x3) kernels of wino4x4.c for the block
 * driver (winoblk.h), AVX-512F only. Private to lib/nn: conv3x3.c picks them
 * for the shapes glad_wino4x4_ok / glad_wino4x4_dw_ok accept when the CPU has
 * AVX-512F; same layouts and contract as wino3x3.h. */
#ifndef GLAD_NN_WINO4X4_H
#define GLAD_NN_WINO4X4_H

#include "nn/winoblk.h"

/* H and W multiples of 4, NO % 8 == 0, NI >= 16, H W >= 1024 */
int glad_wino4x4_ok(int NI, int H, int W, int NO);
extern const glad_wino_kernel glad_wino4x4_kernel;

/* weight gradient: H, W multiples of 4, C % 32 == 0, OC % 16 == 0, H W >= 1024 */
int glad_wino4x4_dw_ok(int C, int H, int W, int OC);
extern const glad_wino_dwkernel glad_wino4x4_dwkernel;

#endif
