/* model.c - see model.h. */
#include <stdlib.h>
#include <string.h>
#include "diffusion/model.h"
#include "io/safetensors.h"

int glad_model_schedule(glad_model *m, glad_betas betas, int T)
{
    if (T < 1 || T > GLAD_MODEL_MAX_T) return glad_fail(GLAD_ERANGE, "schedule length T = %d out of range 1..%d", T, GLAD_MODEL_MAX_T);
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

int glad_model_load(glad_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    glad_betas betas = GLAD_BETAS_LINEAR;
    int T = GLAD_MODEL_DEFAULT_T;
    glad_st *st;
    int rc = glad_st_open(&st, path);
    if (rc) return rc;   /* glad_st_open's detail: "<path>: <why>" */
    const char *b = glad_st_meta(st, "betas"), *ts = glad_st_meta(st, "T");
    if (b && glad_betas_parse(b, &betas)) rc = glad_fail(GLAD_EFORMAT, "%s: metadata 'betas' is '%.40s' (linear or scaled_linear)", path, b);
    if (!rc && ts) {
        char *end;
        long v = strtol(ts, &end, 10);
        if (end == ts || *end || v < 1 || v > GLAD_MODEL_MAX_T) rc = glad_fail(GLAD_EFORMAT, "%s: metadata 'T' is '%.40s' (an integer 1..%d)", path, ts, GLAD_MODEL_MAX_T);
        else T = (int)v;
    }
    glad_st_close(st);
    if (rc) return rc;
    char err[600] = "";
    if ((rc = glad_unet_load(&m->unet, path, err, sizeof err))) return glad_fail(rc, "%s", err);
    if ((rc = glad_model_schedule(m, betas, T))) { glad_model_free(m); return rc; }
    return 0;
}

void glad_model_free(glad_model *m)
{
    if (!m) return;
    glad_unet_free(m->unet);
    free(m->alpha_bar);
    memset(m, 0, sizeof *m);
}
