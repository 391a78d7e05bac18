/* entry.c - libFuzzer's entry point for one harness: the Makefile compiles
 * it with -DGLAD_FUZZ_TARGET=fuzz_NAME and links it with the harness file. */
#include <stddef.h>
#include <stdint.h>

int GLAD_FUZZ_TARGET(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GLAD_FUZZ_TARGET(data, size);
    return 0;
}
