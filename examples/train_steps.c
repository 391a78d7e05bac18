/* train_steps.c - a libglad example: train the diffusion UNet for a few
 * steps on a glad stream of normal images (glad-encode or glad-synth output)
 * with DDAD's noise-prediction loss, printing the loss of every step, and
 * save the model file glad-denoise and anomaly_map read. The loop is the
 * library's batch / forward / backward / update, as llm.c's train_gpt2.c.
 *   cc $(pkg-config --cflags glad) train_steps.c $(pkg-config --libs glad)
 *   ./a.out TRAIN.msgpack STEPS OUT.model */
#include <stdio.h>
#include <stdlib.h>
#include "libglad.h"

int main(int argc, char **argv)
{
    if (argc != 4 || atol(argv[2]) < 1) { fprintf(stderr, "usage: train_steps TRAIN.msgpack STEPS OUT.model\n"); return 2; }
    glad_train_config c;
    glad_train_config_default(&c);   /* every field unset: the defaults */
    c.input = argv[1];
    c.output = argv[3];              /* checked creatable before the first step */
    c.preset = GLAD_TRAIN_PRESET_TINY;
    c.loss = GLAD_TRAIN_DDPM;
    c.batch = 4;
    c.lr = 1e-3;
    c.steps = atol(argv[2]);
    glad_train *tr = NULL;
    int rc;
    glad_error_clear();
    GLAD_TRYG(rc, glad_train_open(&tr, &c), out);
    printf("%d images of %dx%dx%d, %zu parameters\n", tr->data.n, tr->data.C, tr->data.S, tr->data.S, tr->nparams);
    while (tr->step < tr->total) {
        GLAD_TRYG(rc, glad_train_batch(tr), out);      /* x_t, t and the target of this step */
        GLAD_TRYG(rc, glad_train_forward(tr), out);    /* eps = UNet(x_t, t), the loss */
        GLAD_TRYG(rc, glad_train_backward(tr), out);   /* parameter gradients */
        GLAD_TRYG(rc, glad_train_update(tr), out);     /* Adam; step += 1 */
        printf("step %ld loss %.6f\n", tr->step, tr->loss);
    }
    GLAD_TRYG(rc, glad_train_save(tr, argv[3]), out);
out:
    if (rc) fprintf(stderr, "train_steps: %s\n", *glad_error_detail() ? glad_error_detail() : glad_strerror(rc));
    if (glad_train_close(tr) && !rc) rc = GLAD_EIO;
    return rc ? 1 : 0;
}
