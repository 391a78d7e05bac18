/* winograd.h - 3x3 stride-1 pad-1 convolution by Winograd's minimal filtering
 * F(2x2,3x3) (Lavin & Gray 2016): per 2x2 output tile, 16 products instead of
 * 36, as 16 GEMMs over channels. Forward only (inference); the weights are
 * transformed once by the caller. The input and output transforms come as
 * range functions so a caller can split them over its own threads and run the
 * 16 GEMMs itself; glad_winograd3x3_forward does all three steps. Not a
 * general convolution: see conv2d in nn.h for other kernels, strides and the
 * backward pass. */
#ifndef GLAD_WINOGRAD_H
#define GLAD_WINOGRAD_H

#include <stddef.h>

/* u[4 r + c] = (G g G^T)[r][c] of one 3x3 filter g (in double, rounded once) */
void glad_winograd3x3_filter(float *u, const float *g);
/* U (16, OC, C) = G g G^T for each filter g of w (OC, C, 3, 3) */
void glad_winograd3x3_weights(float *U, const float *w, int OC, int C);
/* T = ceil(H/2) * ceil(W/2) tiles */
int glad_winograd3x3_tiles(int H, int W);
/* V (16, C, T) = B^T d B of every tile of x (C,H,W), channels [c0,c1) */
void glad_winograd3x3_input(float *V, const float *x, int C, int H, int W, int c0, int c1);
/* out (OC,H,W) = A^T m A + b (then max(., 0) when relu) from M (16, OC, T),
 * for output channels [o0,o1) and tiles [t0,t1); b may be NULL */
void glad_winograd3x3_output(float *out, const float *M, const float *b, int OC, int H, int W, int relu, int o0, int o1,
                             int t0, int t1);
/* floats of workspace of glad_winograd3x3_forward: V and M, 16 T (C + OC) */
size_t glad_winograd3x3_workspace(int C, int H, int W, int OC);
/* out (OC,H,W) = conv3x3(x (C,H,W), pad 1) + b (then ReLU when relu), one image */
void glad_winograd3x3_forward(float *out, const float *x, const float *U, const float *b, int C, int H, int W, int OC,
                              int relu, float *ws);

#endif
