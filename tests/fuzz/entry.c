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
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { fprintf(stderr, "%s: cannot open '%s'\n", argv[0], argv[i]); return 1; }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0, got;
        do {
            if (n == cap) {
                uint8_t *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
                if (!nb) { free(buf); fclose(f); fprintf(stderr, "%s: out of memory\n", argv[0]); return 1; }
                buf = nb;
            }
            got = fread(buf + n, 1, cap - n, f);
            n += got;
        } while (got > 0);
        int bad = ferror(f);
        fclose(f);
        if (bad) { free(buf); fprintf(stderr, "%s: cannot read '%s'\n", argv[0], argv[i]); return 1; }
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
#endif
