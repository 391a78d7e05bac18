/* model.c - see model.h. */
#include <stdlib.h>
#include <string.h>
#include "diffusion/model.h"
#include "io/safetensors.h"

int glad_model_schedule(glad_model *m, glad_betas betas, int T)
{
    if (T < 2 || T > GLAD_MODEL_MAX_T) return glad_fail(GLAD_ERANGE, "schedule length T = %d out of range 2..%d", T, GLAD_MODEL_MAX_T);
    double *ab = malloc((size_t)T * sizeof *ab);
    if (!ab) return glad_fail(GLAD_ENOMEM, "out of memory");
    int rc = glad_schedule_alpha_bar(ab, T, betas);
    if (rc) { free(ab); return rc; }
    free(m->alpha_bar);
    m->alpha_bar = ab;
    m->betas = betas;
    m->T = T;
    return 0;
}

int glad_model_load_st(glad_model *m, const glad_st *st, const char *path)
{
    memset(m, 0, sizeof *m);
    glad_betas betas = GLAD_BETAS_LINEAR;
    int T = GLAD_MODEL_DEFAULT_T;
    const char *b = glad_st_meta(st, "betas"), *ts = glad_st_meta(st, "T");
    if (b && glad_betas_parse(b, &betas)) return glad_fail(GLAD_EFORMAT, "%s: metadata 'betas' is '%.40s' (linear or scaled_linear)", path, b);
    if (ts) {
        char *end;
        long v = strtol(ts, &end, 10);
        if (end == ts || *end || v < 2 || v > GLAD_MODEL_MAX_T)
            return glad_fail(GLAD_EFORMAT, "%s: metadata 'T' is '%.40s' (an integer 2..%d)", path, ts, GLAD_MODEL_MAX_T);
        T = (int)v;
    }
    GLAD_TRY(glad_unet_load_st(&m->unet, st, path));
    int rc = glad_model_schedule(m, betas, T);
    if (rc) glad_model_free(m);
    return rc;
}

int glad_model_load(glad_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    glad_st *st;
    GLAD_TRY(glad_unet_file_open(&st, path));
    int rc = glad_model_load_st(m, st, path);
    glad_st_close(st);
    return rc;
}

void glad_model_free(glad_model *m)
{
    if (!m) return;
    glad_unet_free(m->unet);
    free(m->alpha_bar);
    memset(m, 0, sizeof *m);
}
