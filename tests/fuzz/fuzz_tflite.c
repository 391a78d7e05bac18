/* fuzz_tflite.c - harness for the TFLite reader (glad_tflite_parse,
 * io/tflite.h). A parsed model's indices must be in range and its constants'
 * bytes inside the file; a failure must say why. */
#include "fuzz.h"
#include "io/tflite.h"

static volatile float tflite_sink;

int fuzz_tflite(const uint8_t *d, size_t n)
{
    glad_tflite_model *m;
    glad_error_clear();
    if (glad_tflite_parse(&m, d, n)) {
        FUZZ_ASSERT(glad_error_detail()[0] != 0);
        return 0;
    }
    for (int i = 0; i < m->nin; i++) FUZZ_ASSERT(m->inputs[i] >= 0 && m->inputs[i] < m->ntensors);
    for (int i = 0; i < m->nout; i++) FUZZ_ASSERT(m->outputs[i] >= 0 && m->outputs[i] < m->ntensors);
    for (int i = 0; i < m->nops; i++) {
        const glad_tflite_op *op = &m->ops[i];
        for (int k = 0; k < op->nin; k++) FUZZ_ASSERT(op->in[k] >= -1 && op->in[k] < m->ntensors);
        for (int k = 0; k < op->nout; k++) FUZZ_ASSERT(op->out[k] >= -1 && op->out[k] < m->ntensors);
        (void)glad_tflite_op_name(op->code);
    }
    for (int i = 0; i < m->ntensors; i++) {
        const glad_tflite_tensor *x = &m->tensors[i];
        FUZZ_ASSERT(x->name != NULL && x->ndim >= 0 && x->ndim <= GLAD_TFLITE_MAX_DIMS);
        FUZZ_ASSERT(x->raw_offset <= n && x->raw_len <= n - x->raw_offset);
        float s = 0;
        for (size_t k = 0; k < x->numel; k++) s += x->data[k];   /* every constant readable */
        tflite_sink = s;
    }
    glad_tflite_free(m);
    return 0;
}
