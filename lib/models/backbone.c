/* backbone.c - the backbone dispatch (backbone.h). The `unet` backbone runs
 * the encoder half of a glad-train model at a small timestep and returns the
 * activations at the end of each resolution level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image.h"
#include "models/backbone.h"
#include "models/unet.h"

struct glad_backbone {
    int kind;
    glad_unet *unet;
    float t;
};

int glad_backbone_open(glad_backbone **out, const glad_backbone_opts *o, char *err, size_t errlen)
{
    if (!o->kind || strcmp(o->kind, "unet") != 0) {
        snprintf(err, errlen, "unknown backbone '%s' (this build has: unet)", o->kind ? o->kind : "");
        return GLAD_EUNSUPPORTED;
    }
    if (!o->weights) { snprintf(err, errlen, "the unet backbone needs the model file (--model)"); return GLAD_EINVAL; }
    glad_backbone *bb = calloc(1, sizeof *bb);
    if (!bb) return GLAD_ENOMEM;
    int rc = glad_unet_load(&bb->unet, o->weights, err, errlen);
    if (rc) { free(bb); return rc; }
    bb->t = o->feature_t;
    *out = bb;
    return 0;
}

void glad_backbone_close(glad_backbone *bb)
{
    if (!bb) return;
    glad_unet_free(bb->unet);
    free(bb);
}

int glad_backbone_layers(const glad_backbone *bb) { return glad_unet_cfg(bb->unet)->nmults; }
int glad_backbone_input_size(const glad_backbone *bb) { return glad_unet_cfg(bb->unet)->img_size; }
int glad_backbone_input_channels(const glad_backbone *bb) { return glad_unet_cfg(bb->unet)->in_channels; }

int glad_backbone_features(glad_backbone *bb, const float *img, int C, int H, int W, int nl, const int *layers, float **out,
                           int *c, int *h, int *w)
{
    const glad_unet_config *cfg = glad_unet_cfg(bb->unet);
    int S = cfg->img_size, IC = cfg->in_channels;
    for (int i = 0; i < nl; i++) {
        out[i] = NULL;
        if (layers[i] < 0 || layers[i] >= cfg->nmults) return GLAD_EINVAL;
    }
    size_t n = (size_t)IC * S * S;
    float *x = malloc(n * sizeof(float));
    if (!x) return GLAD_ENOMEM;
    int rc = 0;
    /* channels: grey <-> RGB as the model expects */
    float *src = (float *)img, *conv = NULL;
    if (C != IC) {
        size_t hw = (size_t)H * W;
        conv = malloc(hw * IC * sizeof(float));
        if (!conv) { free(x); return GLAD_ENOMEM; }
        if (IC == 3 && C == 1) for (int k = 0; k < 3; k++) memcpy(conv + k * hw, img, hw * sizeof(float));
        else if (IC == 1 && C == 3) for (size_t i = 0; i < hw; i++) conv[i] = 0.299f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
        else { free(conv); free(x); return GLAD_ESHAPE; }
        src = conv;
    }
    if (H == S && W == S) memcpy(x, src, n * sizeof(float));
    else rc = glad_resize_bilinear(x, S, S, src, IC, H, W, 1);
    free(conv);
    float *feats[GLAD_UNET_MAX_LEVELS];
    int fc[GLAD_UNET_MAX_LEVELS], fh[GLAD_UNET_MAX_LEVELS], fw[GLAD_UNET_MAX_LEVELS];
    float t = bb->t;
    int nlev = rc ? rc : glad_unet_encode(bb->unet, x, &t, 1, feats, fc, fh, fw);
    free(x);
    if (nlev < 0) return nlev;
    for (int i = 0; i < nl; i++) {
        int l = layers[i];
        size_t m = (size_t)fc[l] * fh[l] * fw[l];
        out[i] = malloc(m * sizeof(float));
        if (!out[i]) { for (int k = 0; k <= i; k++) { free(out[k]); out[k] = NULL; } return GLAD_ENOMEM; }
        memcpy(out[i], feats[l], m * sizeof(float));
        c[i] = fc[l]; h[i] = fh[l]; w[i] = fw[l];
    }
    return 0;
}
