/* fuzz_safetensors.c - harness for the safetensors reader (io/safetensors.h):
 * the bytes as a file (a memfd, since glad_st_open takes a path: mapped),
 * every entry copied out and converted to float32, every metadata pair read.
 * An opened file's entries must lie inside the file. The same bytes through
 * glad_st_open_mem (the copied-buffer path) must give the same outcome.
 * Then the same file as a memory bank (score/bank.h, glad_bank_load: its
 * metadata (pool, standardize in range), the [M,C] matrices, the whole-image Gaussians): a bank that
 * loads must answer a query and score a whole-image vector. */
#include "fuzz.h"
#include "io/safetensors.h"
#include "imgproc/standardize.h"
#include "score/bank.h"

int fuzz_safetensors(const uint8_t *d, size_t n)
{
    const char *path = fuzz_memfile(d, n);
    glad_st *st, *mem = NULL;
    int rm = glad_st_open_mem(&mem, d, n, "fuzz");
    if (!path) { glad_st_close(mem); return 0; }
    int rf = glad_st_open(&st, path);
    FUZZ_ASSERT(rf == rm);
    if (!rf) FUZZ_ASSERT(glad_st_count(st) == glad_st_count(mem) && glad_st_meta_count(st) == glad_st_meta_count(mem));
    glad_st_close(mem);
    if (rf) return 0;
    for (int i = 0; i < glad_st_count(st); i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        FUZZ_ASSERT(e && e->begin <= e->end && e->end <= n);
        FUZZ_ASSERT(glad_st_find(st, e->name) != NULL);
        glad_tensor t;
        if (glad_st_get_f32(st, e->name, &t) == 0) {
            FUZZ_ASSERT(t.dtype == GLAD_DT_F32);
            glad_tensor_free(&t);
        }
    }
    for (int i = 0; i < glad_st_meta_count(st); i++) {
        const char *k = glad_st_meta_key(st, i);
        FUZZ_ASSERT(k && glad_st_meta(st, k) != NULL);
    }
    glad_st_close(st);
    glad_bank b;
    if (glad_bank_load(&b, path) == 0) {
        /* the stored rows are not renormalised, so a distance may be any
         * finite number: the query must only run */
        FUZZ_ASSERT(b.nlayers >= 1 && b.pool >= 1);
        FUZZ_ASSERT(b.stdz == 0 || (b.stdz > 0 && b.stdz <= GLAD_STANDARDIZE_MAX));
        float f[2] = {1, 0}, D[2];
        for (int i = 0; i < b.nlayers; i++)
            if (b.C[i] <= 2) {
                FUZZ_ASSERT(glad_bank_query(D, &b, i, f, b.C[i], 1, 2 / b.C[i]) == 0);
                /* loaded radii are in [0, 2] with a positive median: both norms run */
                if (b.radius_frac > 0)
                    for (int nm = GLAD_BANK_NORM_RATIO; nm <= GLAD_BANK_NORM_DIFF; nm++)
                        FUZZ_ASSERT(b.radius[i] && b.rmed[i] > 0 && glad_bank_query_norm(D, &b, i, (glad_bank_norm)nm, f, b.C[i], 1, 2 / b.C[i]) == 0);
            }
        float *gf[GLAD_BANK_MAX_LAYERS] = {0};
        int C[GLAD_BANK_MAX_LAYERS], one[GLAD_BANK_MAX_LAYERS], ok = 1;
        for (int i = 0; i < b.nglobal; i++) {
            C[i] = b.gauss[i].C, one[i] = 1;
            ok &= (gf[i] = calloc((size_t)C[i], sizeof(float))) != NULL;
        }
        double d;
        if (ok && b.nglobal) FUZZ_ASSERT(glad_bank_score_global(&b, (const float *const *)gf, C, one, one, &d) == 0);
        for (int i = 0; i < b.nglobal; i++) free(gf[i]);
        glad_bank_free(&b);
    }
    return 0;
}
