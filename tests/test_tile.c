/* test_tile.c - full-resolution tiling (imgproc/tile.h): the geometry, the
 * reflect padding of a crop, the ramp weights and the blend of known
 * per-tile maps (answers worked out by hand in the comments), the copy
 * round trip, and the record split and merge with their errors. */
#include "check.h"
#include "imgproc/tile.h"
#include "io/stream.h"

static int offsets_are(int len, int N, int P, int n, const int *want)
{
    glad_tile_grid g;
    if (glad_tile_grid_init(&g, len, 1, N, P) || g.ny != n) return 0;
    for (int i = 0; i < n; i++) if (glad_tile_axis_offset(len, N, P, i) != want[i]) return 0;
    return 1;
}

static void test_geometry(void)
{
    /* 300 rows, N 64, P 16: stride 48, 1 + ceil(236/48) = 6 tiles, the last at 300-64 = 236 */
    CHECK(offsets_are(300, 64, 16, 6, (const int[]){0, 48, 96, 144, 192, 236}));
    /* 90 columns: 1 + ceil(26/48) = 2, at 0 and 26 */
    CHECK(offsets_are(90, 64, 16, 2, (const int[]){0, 26}));
    CHECK(offsets_are(64, 64, 16, 1, (const int[]){0}));             /* exactly one tile */
    CHECK(offsets_are(65, 64, 16, 2, (const int[]){0, 1}));          /* one pixel more: two */
    CHECK(offsets_are(40, 64, 16, 1, (const int[]){0}));             /* smaller than N: one, padded */
    CHECK(offsets_are(128, 64, 0, 2, (const int[]){0, 64}));         /* no overlap: a partition */
    CHECK(offsets_are(130, 64, 0, 3, (const int[]){0, 64, 66}));
    /* KolektorSDD-like 1263 x 500, N 256, P 32: stride 224; rows 1 + ceil(1007/224) = 6, columns 1 + ceil(244/224) = 3 */
    glad_tile_grid g;
    CHECK(glad_tile_grid_init(&g, 1263, 500, 256, 32) == 0 && g.ny == 6 && g.nx == 3 && glad_tile_count(&g) == 18);
    int y, x;
    glad_tile_origin(&g, 17, &y, &x);
    CHECK(y == 1263 - 256 && x == 500 - 256);
    glad_tile_origin(&g, 4, &y, &x);   /* row 1, column 1 */
    CHECK(y == 224 && x == 224);
    CHECK(glad_tile_grid_init(&g, 10, 10, 8, 8) == GLAD_EINVAL);    /* overlap must be below N */
    CHECK(glad_tile_grid_init(&g, 10, 10, 0, 0) == GLAD_EINVAL);
    CHECK(glad_tile_grid_init(&g, 0, 10, 8, 0) == GLAD_EINVAL);
    CHECK(glad_tile_grid_init(&g, 10, 10, 8, -1) == GLAD_EINVAL);
}

static void test_ramp(void)
{
    /* N 8, P 4: r(t) = min(1, (t+.5)/4, (7.5-t)/4) */
    const double want[8] = {0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125};
    int ok = 1;
    for (int t = 0; t < 8; t++) ok &= glad_tile_ramp(8, 4, t) == want[t];
    CHECK(ok);
    /* N 10, P 2: flat 1 in the middle */
    CHECK(glad_tile_ramp(10, 2, 0) == 0.25 && glad_tile_ramp(10, 2, 1) == 0.75 && glad_tile_ramp(10, 2, 2) == 1 && glad_tile_ramp(10, 2, 9) == 0.25);
    CHECK(glad_tile_ramp(10, 0, 0) == 1 && glad_tile_ramp(10, 0, 9) == 1);
    /* across an overlap of exactly P the two weights sum to 1 (stride 4 = N - P) */
    ok = 1;
    for (int t = 4; t < 8; t++) ok &= glad_tile_ramp(8, 4, t) + glad_tile_ramp(8, 4, t - 4) == 1.0;
    CHECK(ok);
}

static void test_crop(void)
{
    /* a [1,3,6] u8 image v = 10 y + x; N 4, P 2: rows padded (3 < 4), columns at 0 and 2 */
    glad_tensor im, t;
    CHECK(glad_tensor_alloc4(&im, GLAD_DT_U8, 1, 3, 6, -1) == 0);
    for (int y = 0; y < 3; y++) for (int x = 0; x < 6; x++) ((uint8_t *)im.data)[y * 6 + x] = (uint8_t)(10 * y + x);
    glad_tile_grid g;
    CHECK(glad_tile_grid_init(&g, 3, 6, 4, 2) == 0 && g.ny == 1 && g.nx == 2);
    CHECK(glad_tile_crop(&t, &im, &g, 1) == 0);
    /* tile 1 at x 2; rows 0 1 2 then the reflection of row 1 */
    const uint8_t want[16] = {2, 3, 4, 5, 12, 13, 14, 15, 22, 23, 24, 25, 12, 13, 14, 15};
    CHECK(t.ndim == 3 && t.shape[0] == 1 && t.shape[1] == 4 && t.shape[2] == 4 && !memcmp(t.data, want, 16));
    glad_tensor_free(&t);
    glad_tensor_free(&im);
    /* a [2,1] f32 image (H 2, W 1) in N 5: rows reflect with period 2: 0 1 0 1 0; the one column repeats */
    CHECK(glad_tensor_alloc4(&im, GLAD_DT_F32, 2, 1, -1, -1) == 0);
    ((float *)im.data)[0] = 7; ((float *)im.data)[1] = 9;
    CHECK(glad_tile_grid_init(&g, 2, 1, 5, 0) == 0 && glad_tile_count(&g) == 1);
    CHECK(glad_tile_crop(&t, &im, &g, 0) == 0 && t.ndim == 2 && t.shape[0] == 5 && t.shape[1] == 5);
    int ok = 1;
    for (int r = 0; r < 5; r++) for (int c = 0; c < 5; c++) ok &= ((float *)t.data)[r * 5 + c] == (r % 2 ? 9.f : 7.f);
    CHECK(ok);
    glad_tensor_free(&t);
    /* a tensor of another size is refused */
    glad_tile_grid g2;
    glad_tile_grid_init(&g2, 3, 3, 2, 0);
    CHECK(glad_tile_crop(&t, &im, &g2, 0) == GLAD_ESHAPE);
    glad_tensor_free(&im);
}

/* tiles of value k+1 (constant per tile), blended */
static int blend_constants(const glad_tile_grid *g, glad_dtype dt, glad_tensor *out)
{
    glad_tile_acc a;
    glad_tensor t;
    int rc = 0;
    for (int k = 0; k < glad_tile_count(g) && !rc; k++) {
        float v[64];
        for (int i = 0; i < g->size * g->size; i++) v[i] = (float)(k + 1);
        rc = glad_tensor_from_f32(&t, dt, 3, (const int64_t[]){1, g->size, g->size}, v);
        if (!rc) rc = k == 0 ? glad_tile_acc_init(&a, g, &t, 1) : 0;
        if (!rc) rc = glad_tile_acc_add(&a, &t, k);
        glad_tensor_free(&t);
    }
    if (!rc) rc = glad_tile_acc_finish(&a, out);
    glad_tile_acc_free(&a);
    return rc;
}

static void test_blend(void)
{
    /* one row of tiles: H 4, W 6, N 4, P 2, tiles at x 0 and 2; r = .25 .75 .75 .25.
     * x 0,1: tile 0 only -> 1; x 2: (.75*1 + .25*2) / 1 = 1.25; x 3: (.25*1 + .75*2) = 1.75; x 4,5: 2 */
    glad_tile_grid g;
    glad_tensor out;
    CHECK(glad_tile_grid_init(&g, 4, 6, 4, 2) == 0 && glad_tile_count(&g) == 2);
    CHECK(blend_constants(&g, GLAD_DT_F32, &out) == 0);
    const float row[6] = {1, 1, 1.25f, 1.75f, 2, 2};
    int ok = out.ndim == 3 && out.shape[1] == 4 && out.shape[2] == 6;
    for (int y = 0; ok && y < 4; y++) ok &= !memcmp((float *)out.data + y * 6, row, sizeof row);
    CHECK(ok);
    glad_tensor_free(&out);
    /* the same in u8: 1.25 -> 1, 1.75 -> 2 (rounded) */
    CHECK(blend_constants(&g, GLAD_DT_U8, &out) == 0);
    const uint8_t row8[6] = {1, 1, 1, 2, 2, 2};
    CHECK(out.dtype == GLAD_DT_U8 && !memcmp(out.data, row8, 6));
    glad_tensor_free(&out);
    /* 2 x 2 tiles on 6 x 6 (values 1 2 / 3 4). Pixel (2,2): weights .75*.75, .75*.25, .25*.75, .25*.25
     * -> .5625 + 2*.1875 + 3*.1875 + 4*.0625 = 1.75; pixel (3,2): .25*.75 (1), .25*.25 (2), .75*.75 (3),
     * .75*.25 (4) -> .1875 + .125 + 1.6875 + .75 = 2.75; corner (5,5): tile 3 only -> 4 */
    CHECK(glad_tile_grid_init(&g, 6, 6, 4, 2) == 0 && glad_tile_count(&g) == 4);
    CHECK(blend_constants(&g, GLAD_DT_F32, &out) == 0);
    const float *A = out.data;
    CHECK(A[2 * 6 + 2] == 1.75f && A[3 * 6 + 2] == 2.75f && A[5 * 6 + 5] == 4.f && A[0] == 1.f && A[5 * 6] == 3.f);
    glad_tensor_free(&out);
}

/* an HxW [C,H,W] u8 image cut and copied back, and an f32 map cut and blended back, are the input bit for bit */
static int round_trip(int C, int H, int W, int N, int P)
{
    glad_tensor im, f, t, back = {0}, fback = {0};
    glad_tile_grid g;
    glad_tile_acc a, b;
    if (glad_tensor_alloc4(&im, GLAD_DT_U8, C, H, W, -1) || glad_tensor_alloc4(&f, GLAD_DT_F32, H, W, -1, -1)) return 0;
    for (size_t i = 0; i < glad_tensor_numel(&im); i++) ((uint8_t *)im.data)[i] = (uint8_t)(i * 37 + 11);
    for (size_t i = 0; i < glad_tensor_numel(&f); i++) ((float *)f.data)[i] = (float)i / 7.f - 3.3f;
    int ok = glad_tile_grid_init(&g, H, W, N, P) == 0;
    for (int k = 0; ok && k < glad_tile_count(&g); k++) {
        ok = glad_tile_crop(&t, &im, &g, k) == 0 && (k || glad_tile_acc_init(&a, &g, &t, 0) == 0) && glad_tile_acc_add(&a, &t, k) == 0;
        glad_tensor_free(&t);
        ok = ok && glad_tile_crop(&t, &f, &g, k) == 0 && (k || glad_tile_acc_init(&b, &g, &t, 1) == 0) && glad_tile_acc_add(&b, &t, k) == 0;
        glad_tensor_free(&t);
    }
    ok = ok && glad_tile_acc_finish(&a, &back) == 0 && glad_tile_acc_finish(&b, &fback) == 0;
    ok = ok && back.ndim == 3 && back.shape[1] == H && back.shape[2] == W && !memcmp(back.data, im.data, glad_tensor_nbytes(&im));
    ok = ok && fback.ndim == 2 && !memcmp(fback.data, f.data, glad_tensor_nbytes(&f));   /* tiles that agree: exact */
    glad_tile_acc_free(&a); glad_tile_acc_free(&b);
    glad_tensor_free(&im); glad_tensor_free(&f); glad_tensor_free(&back); glad_tensor_free(&fback);
    return ok;
}

static void test_round_trip(void)
{
    CHECK(round_trip(3, 300, 90, 64, 16));   /* tall */
    CHECK(round_trip(1, 300, 90, 96, 0));    /* one tile narrower than... 96 > 90: the columns padded */
    CHECK(round_trip(3, 63, 63, 64, 8));     /* one smaller than a tile both ways */
    CHECK(round_trip(1, 1, 5, 4, 1));        /* a single row */
    CHECK(round_trip(3, 17, 29, 5, 4));      /* stride 1 */
}

/* ---- records ---- */

static void make_record(glad_record *r, const char *id, int H, int W)
{
    glad_record_init(r);
    glad_tensor im, mk;
    glad_tensor_alloc4(&im, GLAD_DT_U8, 3, H, W, -1);
    glad_tensor_alloc4(&mk, GLAD_DT_U8, 1, H, W, -1);
    for (size_t i = 0; i < glad_tensor_numel(&im); i++) ((uint8_t *)im.data)[i] = (uint8_t)(i * 13 + 5);
    for (size_t i = 0; i < glad_tensor_numel(&mk); i++) ((uint8_t *)mk.data)[i] = (uint8_t)(i % 7 == 0);
    glad_record_set_str(r, "id", id);
    glad_record_set_str(r, "class", "part");
    glad_record_set_int(r, "label", 1);
    glad_record_set_tensor(r, "image", &im);
    glad_record_set_tensor(r, "mask", &mk);
}

/* split r into tiles[] (at most 64) */
static int split(glad_record *r, int N, int P, glad_record *tiles)
{
    glad_tile_splitter s;
    if (glad_tile_split_begin(&s, r, N, P)) return -1;
    int n = 0;
    for (int i = 0; i < 64; i++) glad_record_init(&tiles[i]);
    while (n < 64 && glad_tile_split_next(&s, &tiles[n]) == 1) n++;
    glad_tile_split_free(&s);
    return n;
}

static int same_record(const glad_record *a, const glad_record *b)
{
    uint8_t *ba, *bb;
    size_t na, nb;
    if (glad_record_encode(a, &ba, &na) || glad_record_encode(b, &bb, &nb)) return 0;
    int same = na == nb && !memcmp(ba, bb, na);
    free(ba);
    free(bb);
    return same;
}

static void test_records(void)
{
    glad_record r, orig, tiles[64], out;
    glad_record_init(&out);
    make_record(&r, "p/test/x/1", 50, 20);
    glad_record_copy(&orig, &r);
    int n = split(&r, 16, 4, tiles);
    /* rows 1 + ceil(34/12) = 4 at 0 12 24 34; columns 1 + ceil(4/12) = 2 at 0 4 */
    CHECK(n == 8);
    const char *s;
    int64_t v;
    CHECK(glad_record_get_str(&tiles[3], "id", &s) == 0 && !strcmp(s, "p/test/x/1@12,4"));
    CHECK(glad_record_get_str(&tiles[7], "tile_of", &s) == 0 && !strcmp(s, "p/test/x/1"));
    CHECK(glad_record_get_int(&tiles[7], "tile_y", &v) == 0 && v == 34);
    CHECK(glad_record_get_int(&tiles[7], "tile_full_w", &v) == 0 && v == 20);
    CHECK(glad_record_get_str(&tiles[5], "class", &s) == 0 && !strcmp(s, "part"));
    /* merged with a per-tile amap of value k (max 7 in the last tile's own corner) and an ads_step
     * that differs between tiles: one record, the original's fields byte for byte, score = max */
    glad_tile_merger m;
    glad_tile_merge_init(&m, GLAD_REDUCE_MAX, 0);
    int rc = 0, done = 0;
    for (int k = 0; k < n; k++) {
        glad_tensor am;
        glad_tensor_alloc4(&am, GLAD_DT_F32, 1, 16, 16, -1);
        for (int i = 0; i < 256; i++) ((float *)am.data)[i] = (float)k;
        glad_record_set_tensor(&tiles[k], "amap", &am);
        glad_record_set_int(&tiles[k], "ads_step", 100 + k);
        glad_record_set_f64(&tiles[k], "score", k);
        rc = glad_tile_merge_add(&m, &tiles[k], &out);
        if (rc < 0) break;
        done += rc;
    }
    CHECK(rc == 1 && done == 1 && glad_tile_merge_end(&m) == 0);
    double sc;
    CHECK(glad_record_get_f64(&out, "score", &sc) == 0 && sc == 7);
    CHECK(!glad_record_find(&out, "ads_step") && !glad_record_find(&out, "tile_of"));
    const glad_tensor *am;
    CHECK(glad_record_get_tensor(&out, "amap", &am) == 0 && am->shape[1] == 50 && am->shape[2] == 20);
    /* (49,19) is in tile 7 only -> 7; (0,0) in tile 0 only -> 0 */
    CHECK(((float *)am->data)[49 * 20 + 19] == 7.f && ((float *)am->data)[0] == 0.f);
    glad_record_remove(&out, "amap");
    glad_record_remove(&out, "score");
    CHECK(same_record(&out, &orig));
    glad_tile_merge_free(&m);

    /* errors: a missing tile, a duplicated one, another image before this one is complete, a short end */
    int order[4][8] = {{0, 2}, {0, 1, 8}, {0, 1, -1}, {0, 1, 2}};   /* 8: a copy of tile 1 */
    int len[4] = {2, 3, 3, 3};
    const char *want[4] = {"'tile_index' is 2 where 1 was expected (tiles missing", "a duplicated tile", "'tile_of' is 'other'",
                           "ends after 3 of its 8 tiles"};
    for (int c = 0; c < 4; c++) {
        glad_record_free(&r);
        make_record(&r, "p/test/x/1", 50, 20);
        n = split(&r, 16, 4, tiles);
        glad_record other[64];
        make_record(&r, "other", 50, 20);
        split(&r, 16, 4, other);
        glad_record_copy(&tiles[8], &tiles[1]);
        glad_tile_merge_init(&m, GLAD_REDUCE_MAX, 0);
        rc = 0;
        for (int i = 0; i < len[c] && rc >= 0; i++) rc = glad_tile_merge_add(&m, order[c][i] < 0 ? &other[0] : &tiles[order[c][i]], &out);
        if (rc >= 0) rc = glad_tile_merge_end(&m);
        CHECKF(rc == GLAD_EFORMAT && strstr(glad_error_detail(), want[c]), "case %d: %d %s", c, rc, glad_error_detail());
        glad_tile_merge_free(&m);
        for (int i = 0; i < 64; i++) { glad_record_free(&tiles[i]); glad_record_free(&other[i]); }
    }
    /* a tile-sized amap of another shape in a later tile */
    make_record(&r, "q", 20, 20);
    n = split(&r, 16, 4, tiles);
    glad_tile_merge_init(&m, GLAD_REDUCE_MAX, 0);
    glad_tensor t1, t2;
    glad_tensor_alloc4(&t1, GLAD_DT_F32, 1, 16, 16, -1);
    glad_tensor_alloc4(&t2, GLAD_DT_F32, 2, 16, 16, -1);
    glad_record_set_tensor(&tiles[0], "amap", &t1);
    glad_record_set_tensor(&tiles[1], "amap", &t2);
    CHECK(glad_tile_merge_add(&m, &tiles[0], &out) == 0);
    CHECK(glad_tile_merge_add(&m, &tiles[1], &out) == GLAD_EFORMAT && strstr(glad_error_detail(), "'amap' is [2,16,16]"));
    glad_tile_merge_free(&m);
    for (int i = 0; i < 64; i++) glad_record_free(&tiles[i]);
    /* an amap cropped by glad-score --crop is refused at tile 0 */
    make_record(&r, "q", 20, 20);
    split(&r, 16, 4, tiles);
    glad_tensor_alloc4(&t1, GLAD_DT_F32, 1, 12, 12, -1);
    glad_record_set_tensor(&tiles[0], "amap", &t1);
    glad_tile_merge_init(&m, GLAD_REDUCE_MAX, 0);
    CHECK(glad_tile_merge_add(&m, &tiles[0], &out) == GLAD_EFORMAT && strstr(glad_error_detail(), "'amap' is [1,12,12], not the tile size"));
    glad_tile_merge_free(&m);
    for (int i = 0; i < 64; i++) glad_record_free(&tiles[i]);
    /* split refuses a tensor that is not image-sized, and leaves the record as it was */
    make_record(&r, "q", 20, 20);
    glad_tensor_alloc4(&t1, GLAD_DT_F32, 8, 4, 4, -1);
    glad_record_set_tensor(&r, "feat.image.1", &t1);
    glad_tile_splitter sp;
    CHECK(glad_tile_split_begin(&sp, &r, 16, 4) == GLAD_ESHAPE && strstr(glad_error_detail(), "'feat.image.1' is [8,4,4], not image-sized"));
    CHECK(glad_record_find(&r, "image") && glad_record_find(&r, "image")->kind == GLAD_VAL_TENSOR);
    glad_record_free(&r);
    glad_record_free(&orig);
    glad_record_free(&out);
}

int main(void)
{
    test_geometry();
    test_ramp();
    test_crop();
    test_blend();
    test_round_trip();
    test_records();
    return check_done();
}
