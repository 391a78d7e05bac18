/* backbone.c - the backbone dispatch (backbone.h): input preparation shared
 * by every backbone (channels, resize, normalisation), then the model's own
 * feature function. The models themselves live in unet.c, vit.c, resnet.c
 * and mobilenet.c; nothing here knows their layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/image.h"
#include "models/backbone.h"
#include "models/mobilenet.h"
#include "models/resnet.h"
#include "models/unet.h"
#include "models/vit.h"
#include "imgproc/resize.h"

enum { BB_UNET, BB_VIT, BB_RESNET, BB_MOBILENET };
const char *const glad_backbone_norms[] = {"imagenet", "raw", NULL};
const char *const glad_backbone_kinds[] = {"unet", "vit", "resnet", "mobilenetv2", NULL};

struct glad_backbone {
    int kind;
    glad_unet *unet;
    glad_vit *vit;
    glad_resnet *resnet;
    glad_mobilenet *mnet;
    float t;
    int size;                /* 0: from the image */
    int multiple;            /* input sides are rounded to a multiple of this */
    int channels;            /* channels the network takes */
    int imagenet;            /* (x+1)/2, then ImageNet mean/std */
};

/* ImageNet statistics of torchvision / DINO preprocessing */
static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};

const char *glad_backbone_detect(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char h8[8];
    const char *kind = NULL;
    if (fread(h8, 1, 8, f) == 8) {
        if (!memcmp(h8 + 4, "TFL3", 4)) kind = "mobilenetv2";
        else {
            /* safetensors: 8-byte little-endian header length, then JSON; the
             * key names tell the networks apart without reading the weights */
            uint64_t n = 0;
            for (int i = 7; i >= 0; i--) n = n << 8 | h8[i];
            char *js = n > 0 && n < ((uint64_t)64 << 20) ? malloc((size_t)n + 1) : NULL;
            if (js && fread(js, 1, (size_t)n, f) == (size_t)n) {
                js[n] = 0;
                if (strstr(js, "\"blocks.0.attn.qkv.weight\"")) kind = "vit";
                else if (strstr(js, "\"layer1.0.conv1.weight\"")) kind = "resnet";
                else if (strstr(js, "\"down.0.0.weight\"")) kind = "unet";
            }
            free(js);
        }
    }
    fclose(f);
    return kind;
}

int glad_backbone_open(glad_backbone **out, const glad_backbone_opts *o)
{
    *out = NULL;
    const char *kind = o->kind;
    if (!o->weights) return glad_fail(GLAD_EINVAL, "the %s backbone needs a weights file", kind && strcmp(kind, "auto") ? kind : "");
    if (!kind || !strcmp(kind, "auto")) {
        kind = glad_backbone_detect(o->weights);
        if (!kind) return glad_fail(GLAD_EFORMAT, "%s: not a model file of a known backbone (unet, vit, resnet, mobilenetv2)", o->weights);
    }
    int k = -1;
    for (int i = 0; glad_backbone_kinds[i]; i++) if (!strcmp(kind, glad_backbone_kinds[i])) k = i;
    if (k < 0) return glad_fail(GLAD_EUNSUPPORTED, "unknown backbone '%s' (unet, vit, resnet, mobilenetv2)", kind);
    if (o->size < 0 || o->size > 8192) return glad_fail(GLAD_ERANGE, "input size %d out of range", o->size);
    glad_backbone *bb = calloc(1, sizeof *bb);
    if (!bb) return glad_fail(GLAD_ENOMEM, "out of memory");
    bb->kind = k;
    bb->t = o->feature_t;
    bb->size = o->size;
    bb->multiple = 1;
    bb->channels = 3;
    bb->imagenet = o->norm == GLAD_BB_NORM_DEFAULT && (k == BB_VIT || k == BB_RESNET);
    int rc = 0;
    switch (k) {
    case BB_UNET:
        rc = glad_unet_load(&bb->unet, o->weights);
        if (!rc) {
            /* the encoder runs at the model's own size */
            bb->size = glad_unet_cfg(bb->unet)->img_size;
            bb->channels = glad_unet_cfg(bb->unet)->in_channels;
        }
        break;
    case BB_VIT:
        rc = glad_vit_load(&bb->vit, o->weights);
        if (!rc) bb->multiple = glad_vit_cfg(bb->vit)->patch;
        break;
    case BB_RESNET: rc = glad_resnet_load(&bb->resnet, o->weights); break;
    case BB_MOBILENET:
        rc = glad_mobilenet_load(&bb->mnet, o->weights);
        bb->multiple = 32;
        break;
    }
    if (!rc && k != BB_UNET && o->size && o->size % bb->multiple)
        rc = glad_fail(GLAD_EINVAL, "input size %d is not a multiple of %d (%s)", o->size, bb->multiple, glad_backbone_kinds[k]);
    if (rc) { glad_backbone_close(bb); return rc; }
    *out = bb;
    return 0;
}

void glad_backbone_close(glad_backbone *bb)
{
    if (!bb) return;
    glad_unet_free(bb->unet);
    glad_vit_free(bb->vit);
    glad_resnet_free(bb->resnet);
    glad_mobilenet_free(bb->mnet);
    free(bb);
}

int glad_backbone_set_size(glad_backbone *bb, int size)
{
    if (bb->kind == BB_UNET) return glad_fail(GLAD_EINVAL, "the unet backbone runs at its model's size (%d)", bb->size);
    if (size < 0 || size > 8192) return glad_fail(GLAD_EINVAL, "input size %d out of range", size);
    if (size % bb->multiple) return glad_fail(GLAD_EINVAL, "input size %d is not a multiple of %d (%s)", size, bb->multiple, glad_backbone_kinds[bb->kind]);
    bb->size = size;
    return 0;
}

const char *glad_backbone_kind(const glad_backbone *bb) { return glad_backbone_kinds[bb->kind]; }

void glad_backbone_layer_range(const glad_backbone *bb, int *lo, int *hi)
{
    switch (bb->kind) {
    case BB_UNET: *lo = 0; *hi = glad_unet_cfg(bb->unet)->nmults - 1; break;
    case BB_VIT: *lo = 1; *hi = glad_vit_cfg(bb->vit)->depth; break;
    case BB_RESNET: *lo = 1; *hi = glad_resnet_nlayers(bb->resnet); break;
    default: *lo = 0; *hi = glad_mobilenet_nblocks(bb->mnet) - 1; break;
    }
}

int glad_backbone_default_layers(const glad_backbone *bb, int *layers)
{
    int lo, hi, n = 0;
    glad_backbone_layer_range(bb, &lo, &hi);
    switch (bb->kind) {
    case BB_UNET:
        for (int l = hi >= 1 ? hi - 1 : 0; l <= hi; l++) layers[n++] = l;
        return n;
    case BB_VIT: {
        /* GLAD: blocks 3, 6, 9, 12 of 12, i.e. every quarter of the depth */
        int d = hi;
        for (int q = 1; q <= 4; q++) {
            int b = (d * q + 2) / 4;
            if (b >= 1 && (n == 0 || b > layers[n - 1])) layers[n++] = b;
        }
        return n;
    }
    case BB_RESNET: layers[0] = 2; layers[1] = 3; return 2;   /* DDAD, MDPS */
    default: return glad_mobilenet_default_blocks(bb->mnet, layers);
    }
}

static int round_to(int v, int m)
{
    int r = (v + m / 2) / m * m;
    return r < m ? m : r;
}

/* x (channels, h, w) = the image adapted to what the network takes */
static int prepare(const glad_backbone *bb, const float *img, int C, int H, int W, float **out, int *oh, int *ow)
{
    int IC = bb->channels;
    size_t hw = (size_t)H * W;
    float *conv = malloc(hw * IC * sizeof(float));
    if (!conv) return GLAD_ENOMEM;
    if (C == IC) memcpy(conv, img, hw * IC * sizeof(float));
    else if (IC == 3 && C == 1) for (int k = 0; k < 3; k++) memcpy(conv + k * hw, img, hw * sizeof(float));
    else if (IC == 1 && C == 3) for (size_t i = 0; i < hw; i++) conv[i] = 0.299f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
    else { free(conv); return GLAD_ESHAPE; }
    int h = bb->size ? bb->size : round_to(H, bb->multiple), w = bb->size ? bb->size : round_to(W, bb->multiple);
    float *x = conv;
    if (h != H || w != W) {
        x = malloc((size_t)h * w * IC * sizeof(float));
        int rc = x ? glad_resize_bilinear(x, h, w, conv, IC, H, W, 1) : GLAD_ENOMEM;
        free(conv);
        if (rc) { free(x); return rc; }
    }
    if (bb->imagenet) {
        size_t n = (size_t)h * w;
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < n; i++) x[c * n + i] = ((x[c * n + i] + 1.0f) * 0.5f - in_mean[c]) / in_std[c];
    }
    *out = x;
    *oh = h;
    *ow = w;
    return 0;
}

/* out[i] = a fresh copy of src[i] (the unet's activations live in its arena) */
static int copy_out(float **out, float *const *src, int nl, const int *c, const int *h, const int *w)
{
    for (int i = 0; i < nl; i++) {
        size_t m = (size_t)c[i] * h[i] * w[i];
        if (!(out[i] = malloc(m * sizeof(float)))) return GLAD_ENOMEM;
        memcpy(out[i], src[i], m * sizeof(float));
    }
    return 0;
}

static int alloc_out(float **out, int nl, const int *c, const int *h, const int *w)
{
    for (int i = 0; i < nl; i++) {
        size_t m;
        if (glad_mul_size((size_t)c[i] * h[i], (size_t)w[i], &m) || m > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ERANGE;
        if (!(out[i] = malloc(m * sizeof(float)))) return GLAD_ENOMEM;
    }
    return 0;
}

int glad_backbone_features(glad_backbone *bb, const float *img, int C, int H, int W, int nl, const int *layers, float **out,
                           int *c, int *h, int *w)
{
    int lo, hi;
    glad_backbone_layer_range(bb, &lo, &hi);
    for (int i = 0; i < nl; i++) out[i] = NULL;
    if (nl < 1 || nl > GLAD_BACKBONE_MAX_LAYERS) return GLAD_EINVAL;
    for (int i = 0; i < nl; i++) if (layers[i] < lo || layers[i] > hi) return GLAD_EINVAL;
    float *x = NULL;
    int xh = 0, xw = 0, rc;
    GLAD_TRY(prepare(bb, img, C, H, W, &x, &xh, &xw));
    switch (bb->kind) {
    case BB_UNET: {
        float *feats[GLAD_UNET_MAX_LEVELS], *sel[GLAD_BACKBONE_MAX_LAYERS];
        int fc[GLAD_UNET_MAX_LEVELS], fh[GLAD_UNET_MAX_LEVELS], fw[GLAD_UNET_MAX_LEVELS];
        float t = bb->t;
        rc = glad_unet_encode(bb->unet, x, &t, 1, feats, fc, fh, fw);
        if (rc >= 0) {
            for (int i = 0; i < nl; i++) { sel[i] = feats[layers[i]]; c[i] = fc[layers[i]]; h[i] = fh[layers[i]]; w[i] = fw[layers[i]]; }
            rc = copy_out(out, sel, nl, c, h, w);
        }
        break;
    }
    case BB_VIT: {
        const glad_vit_config *vc = glad_vit_cfg(bb->vit);
        for (int i = 0; i < nl; i++) { c[i] = vc->dim; h[i] = xh / vc->patch; w[i] = xw / vc->patch; }
        rc = alloc_out(out, nl, c, h, w);
        if (!rc) rc = glad_vit_features(bb->vit, x, 1, xh, xw, nl, layers, out);
        break;
    }
    case BB_RESNET:
        rc = 0;
        for (int i = 0; i < nl && !rc; i++) rc = glad_resnet_out_shape(bb->resnet, layers[i], xh, xw, &c[i], &h[i], &w[i]);
        if (!rc) rc = alloc_out(out, nl, c, h, w);
        if (!rc) rc = glad_resnet_forward(bb->resnet, x, 1, xh, xw, nl, layers, out);
        break;
    default:
        rc = 0;
        for (int i = 0; i < nl && !rc; i++) rc = glad_mobilenet_out_shape(bb->mnet, layers[i], xh, xw, &c[i], &h[i], &w[i]);
        if (!rc) rc = alloc_out(out, nl, c, h, w);
        if (!rc) rc = glad_mobilenet_features(bb->mnet, x, xh, xw, nl, layers, out);
        break;
    }
    free(x);
    if (rc < 0) {
        for (int i = 0; i < nl; i++) { free(out[i]); out[i] = NULL; }
        return rc;
    }
    return 0;
}
