/* test_pool.c - glad_pool_avg (imgproc/pool.h): the K x K local mean against
 * a direct double sum over the clipped window, on odd shapes including maps
 * smaller than the window; K = 1 copies; bad K and shapes refused. */
#include "check.h"
#include "core/rng.h"
#include "imgproc/pool.h"

/* the definition: mean over the window's positions inside the map */
static double ref_at(const float *x, int H, int W, int K, int c, int y, int i)
{
    double s = 0;
    int n = 0, r = K / 2;
    for (int yy = y - r; yy <= y + r; yy++)
        for (int xx = i - r; xx <= i + r; xx++)
            if (yy >= 0 && yy < H && xx >= 0 && xx < W) { s += x[((size_t)c * H + yy) * W + xx]; n++; }
    return s / n;
}

static void test_against_reference(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {2, 16, 16}, {4, 2, 9}, {1, 33, 3}, {5, 1, 1}};
    static const int ks[] = {1, 3, 5, 7, 9};
    glad_rng rng;
    glad_rng_seed(&rng, 7, 0, 0);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int C = shapes[s][0], H = shapes[s][1], W = shapes[s][2];
        size_t n = (size_t)C * H * W;
        float *x = malloc(n * sizeof *x), *o = malloc(n * sizeof *o);
        for (size_t i = 0; i < n; i++) x[i] = (float)(glad_rng_normal(&rng) * 3 + 1);
        for (size_t k = 0; k < sizeof ks / sizeof *ks; k++) {
            int K = ks[k];
            CHECK(glad_pool_avg(o, x, C, H, W, K) == 0);
            double worst = 0;
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int i = 0; i < W; i++) {
                        double e = fabs(o[((size_t)c * H + y) * W + i] - ref_at(x, H, W, K, c, y, i));
                        if (e > worst) worst = e;
                    }
            CHECKF(worst < 1e-5, "[%d,%d,%d] K %d: max error %g", C, H, W, K, worst);
            if (K == 1) CHECK(memcmp(o, x, n * sizeof *x) == 0);
        }
        free(x);
        free(o);
    }
}

/* a constant map stays constant (the border is not diluted by zeros), and a
 * single spike spreads to exactly the K x K window with weight 1/count */
static void test_border_and_support(void)
{
    enum { H = 6, W = 8 };
    float x[H * W], o[H * W];
    for (int i = 0; i < H * W; i++) x[i] = 2.5f;
    CHECK(glad_pool_avg(o, x, 1, H, W, 5) == 0);
    int flat = 1;
    for (int i = 0; i < H * W; i++) flat &= fabsf(o[i] - 2.5f) < 1e-6f;
    CHECK(flat);
    memset(x, 0, sizeof x);
    x[2 * W + 3] = 9;   // (y 2, x 3): a 3x3 window fully inside
    CHECK(glad_pool_avg(o, x, 1, H, W, 3) == 0);
    int inside = 0, outside_zero = 1;
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W; i++) {
            int in = abs(y - 2) <= 1 && abs(i - 3) <= 1;
            if (in) inside += fabsf(o[y * W + i] - 1.0f) < 1e-6f;
            else outside_zero &= o[y * W + i] == 0;
        }
    CHECK(inside == 9);
    CHECK(outside_zero);
}

static void test_refusals(void)
{
    float x[4] = {0}, o[4];
    CHECK(glad_pool_avg(o, x, 1, 2, 2, 2) == GLAD_EINVAL);
    CHECK(glad_pool_avg(o, x, 1, 2, 2, 0) == GLAD_EINVAL);
    CHECK(glad_pool_avg(o, x, 1, 2, 2, 65) == GLAD_EINVAL);
    CHECK(glad_pool_avg(o, x, 0, 2, 2, 3) == GLAD_EINVAL);
    CHECK(glad_pool_avg(o, x, 1, 0, 2, 3) == GLAD_EINVAL);
}

int main(void)
{
    test_against_reference();
    test_border_and_support();
    test_refusals();
    return check_done();
}
