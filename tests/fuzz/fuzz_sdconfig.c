/* fuzz_sdconfig.c - harness for the latent-diffusion config parsers: the
 * bytes as diffusers' unet/config.json and vae/config.json text, as a model
 * file's __metadata__["config"] carries them:
 *   SD UNet  glad_sdunet_config_parse; a config it accepts must pass
 *            glad_sdunet_config_check (parse promises it);
 *   VAE      glad_vae_config_parse;
 *   both     glad_sdunet_load / glad_vae_load on a safetensors file holding
 *            only that config: loading must fail (no tensors) without
 *            allocating the model, however large the config declares it. */
#include "fuzz.h"
#include "models/sdunet.h"
#include "models/vae.h"

int fuzz_sdconfig(const uint8_t *d, size_t n)
{
    char *js = fuzz_cstr(d, n);
    if (!js) return 0;
    glad_sdunet_config uc;
    if (glad_sdunet_config_parse(&uc, js) == 0) FUZZ_ASSERT(glad_sdunet_config_check(&uc) == 0);
    glad_vae_config vc;
    (void)glad_vae_config_parse(&vc, js);
    size_t len;
    uint8_t *file = fuzz_config_file(js, &len);
    const char *path = file ? fuzz_memfile(file, len) : NULL;
    if (path) {
        glad_sdunet *u = NULL;
        glad_vae *v = NULL;
        FUZZ_ASSERT(glad_sdunet_load(path, &u) != 0);
        FUZZ_ASSERT(glad_vae_load(&v, path) != 0);
    }
    free(file);
    free(js);
    return 0;
}
