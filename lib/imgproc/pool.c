/* pool.c - K x K local mean of (C,H,W) feature maps, border-clipped (pool.h).
 * Separable: a row pass into a scratch plane, then a column pass, each a
 * running sum over the window, so the cost is O(C*H*W) whatever K. */
#include <stdlib.h>
#include <string.h>
#include "imgproc/pool.h"

// x is (C,H,W), out is (C,H,W)
int glad_pool_avg(float *out, const float *x, int C, int H, int W, int K)
{
    if (C < 1 || H < 1 || W < 1 || K < 1 || K > GLAD_POOL_MAX_K || K % 2 == 0)
        return glad_fail(GLAD_EINVAL, "pool: K %d on a [%d,%d,%d] map (K odd, 1..%d)", K, C, H, W, GLAD_POOL_MAX_K);
    size_t plane = (size_t)H * W, n;
    GLAD_TRY(glad_mul_size(plane, (size_t)C, &n));
    if (K == 1) { memcpy(out, x, n * sizeof *out); return 0; }
    int r = K / 2, st = 0;
    // channels are independent: one scratch plane per channel's pass
    #pragma omp parallel for schedule(static) reduction(min:st)
    for (int c = 0; c < C; c++) {
        double *row = malloc(plane * sizeof *row);
        if (!row) { st = GLAD_ENOMEM; continue; }
        const float *xc = x + (size_t)c * plane;
        float *oc = out + (size_t)c * plane;
        // row pass: row[y,x] = sum of x[y, x-r..x+r] inside the row
        for (int y = 0; y < H; y++) {
            const float *xr = xc + (size_t)y * W;
            double s = 0;
            for (int i = 0; i < r && i < W; i++) s += xr[i];
            for (int i = 0; i < W; i++) {
                if (i + r < W) s += xr[i + r];
                if (i - r - 1 >= 0) s -= xr[i - r - 1];
                row[(size_t)y * W + i] = s;
            }
        }
        // column pass over the row sums, divided by the window's count inside the map
        for (int i = 0; i < W; i++) {
            int nx = (i + r < W ? i + r : W - 1) - (i - r > 0 ? i - r : 0) + 1;
            double s = 0;
            for (int j = 0; j < r && j < H; j++) s += row[(size_t)j * W + i];
            for (int y = 0; y < H; y++) {
                if (y + r < H) s += row[(size_t)(y + r) * W + i];
                if (y - r - 1 >= 0) s -= row[(size_t)(y - r - 1) * W + i];
                int ny = (y + r < H ? y + r : H - 1) - (y - r > 0 ? y - r : 0) + 1;
                oc[(size_t)y * W + i] = (float)(s / ((double)nx * ny));
            }
        }
        free(row);
    }
    return st < 0 ? glad_fail(GLAD_ENOMEM, "pool: out of memory") : 0;
}
