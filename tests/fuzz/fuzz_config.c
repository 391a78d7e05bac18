/* fuzz_config.c - harness for the model-config parsers: the bytes as the
 * JSON of a model file's __metadata__["config"]:
 *   UNet    glad_unet_config_parse; a config it accepts is written back with
 *           glad_unet_config_json and must parse to the same config, and is
 *           built with glad_unet_create when its parameters stay small;
 *   ViT     glad_vit_load, ResNet glad_resnet_load on a safetensors file
 *           holding only that config (their parsers are internal): loading
 *           must fail (no tensors), having parsed the config first. */
#include <math.h>
#include "fuzz.h"
#include "core/json.h"
#include "models/resnet.h"
#include "models/unet.h"
#include "models/vit.h"

static void config_unet(const char *js)
{
    glad_unet_config c, c2;
    if (glad_unet_config_parse(&c, js)) return;
    char buf[1024];
    int k = glad_unet_config_json(&c, buf, sizeof buf);
    FUZZ_ASSERT(k > 0 && (size_t)k < sizeof buf);
    FUZZ_ASSERT(glad_unet_config_parse(&c2, buf) == 0);
    FUZZ_ASSERT(c2.img_size == c.img_size && c2.base == c.base && c2.num_res_blocks == c.num_res_blocks &&
                c2.heads == c.heads && c2.in_channels == c.in_channels && c2.nmults == c.nmults && c2.nattn == c.nattn);
    for (int i = 0; i < c.nattn && i < c2.nattn; i++) FUZZ_ASSERT(c2.attn_res[i] == c.attn_res[i]);
    /* build it when small: a bound on the parameters (NaN falls through to
     * create, which must reject it) */
    double chmax = 0;
    for (int i = 0; i < c.nmults; i++)
        if (!((double)c.mults[i] * c.base <= chmax)) chmax = (double)c.mults[i] * c.base;
    double est = (double)c.nmults * (2.0 * c.num_res_blocks + 2) * 2 * 9 * (2 * chmax) * (2 * chmax);
    if (!(est > 32e6)) {
        glad_unet *u;
        if (glad_unet_create(&u, &c) == 0) {
            FUZZ_ASSERT(glad_unet_nparams(u) > 0);
            glad_unet_free(u);
        }
    }
}

int fuzz_config(const uint8_t *d, size_t n)
{
    char *js = fuzz_cstr(d, n);
    if (!js) return 0;
    config_unet(js);
    size_t len;
    uint8_t *file = fuzz_config_file(js, &len);
    const char *path = file ? fuzz_memfile(file, len) : NULL;
    if (path) {
        glad_vit *v;
        glad_resnet *r;
        FUZZ_ASSERT(glad_vit_load(&v, path) != 0);
        FUZZ_ASSERT(glad_resnet_load(&r, path) != 0);
    }
    free(file);
    free(js);
    return 0;
}
