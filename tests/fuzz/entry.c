/* entry.c - libFuzzer's entry point for one harness: the Makefile compiles
 * it with -DGLAD_FUZZ_TARGET=fuzz_NAME and links it with the harness file.
 * With -DGLAD_FUZZ_STANDALONE it also has a main that feeds each file named
 * on the command line to the harness once: `make check` links every harness
 * so with gcc from its Makefile source list (FZ_<name>_LIB), which catches
 * a list missing a file before clang's `make fuzz-ci` does, and the result
 * ($(BUILD)/fuzz-replay/NAME FILE...) replays a finding without clang. */
#include <stddef.h>
#include <stdint.h>

int GLAD_FUZZ_TARGET(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GLAD_FUZZ_TARGET(data, size);
    return 0;
}

#ifdef GLAD_FUZZ_STANDALONE
#include "fuzz.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t n;
        uint8_t *buf = fuzz_slurp(argv[i], &n);
        if (!buf) { fprintf(stderr, "%s: cannot read '%s'\n", argv[0], argv[i]); return 1; }
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
#endif
