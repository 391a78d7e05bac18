/* fuzz.h - shared by the libFuzzer harnesses in tests/fuzz/ and by their
 * replay in tests/test_fuzz.c. Each harness file defines one or more
 *     int fuzz_NAME(const uint8_t *data, size_t size);
 * which feeds the bytes to a library entry point exactly as a file would
 * reach it, and returns 0. `make fuzz` links each with entry.c (libFuzzer's
 * LLVMFuzzerTestOneInput); `make check` compiles them all into
 * tests/test_fuzz.c with GLAD_FUZZ_REPLAY defined and replays the committed
 * corpus and regression inputs through the same functions. Not a test
 * framework: a broken invariant aborts under libFuzzer and is counted as a
 * failure in the replay. */
#ifndef GLAD_FUZZ_H
#define GLAD_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "core/json.h"

#ifdef GLAD_FUZZ_REPLAY
extern int fuzz_failures;
#define FUZZ_ASSERT(c) do { if (!(c)) { fprintf(stderr, "FUZZ_ASSERT %s:%d: %s\n", __FILE__, __LINE__, #c); fuzz_failures++; } } while (0)
#else
#define FUZZ_ASSERT(c) do { if (!(c)) { fprintf(stderr, "FUZZ_ASSERT %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)
#endif

/* The bytes as a file the path-based loaders can open: one memfd per
 * process, rewritten for each input, named by its /proc/self/fd path.
 * Returns the path (static storage) or NULL when the memfd fails. */
static inline const char *fuzz_memfile(const uint8_t *d, size_t n)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("glad-fuzz", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) return NULL;
    for (size_t off = 0; off < n;) {
        ssize_t k = pwrite(fd, d + off, n - off, (off_t)off);
        if (k <= 0) return NULL;
        off += (size_t)k;
    }
    return path;
}

/* The whole file at path (malloc'd, caller frees; *n its size), or NULL when
 * it cannot be opened or read: the replays' reader (tests/test_fuzz.c and
 * entry.c's standalone main). */
static inline uint8_t *fuzz_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            uint8_t *nb = realloc(b, cap = cap ? 2 * cap : 4096);
            if (!nb) { free(b); fclose(f); return NULL; }
            b = nb;
        }
        size_t k = fread(b + *n, 1, cap - *n, f);
        if (k == 0) break;
        *n += k;
    }
    if (ferror(f)) { free(b); b = NULL; }
    fclose(f);
    return b;
}

/* A NUL-terminated copy (caller frees), for the parsers taking C strings. */
static inline char *fuzz_cstr(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, d, n);
    s[n] = 0;
    return s;
}

/* A safetensors file {"__metadata__":{"config":"<js>"}} with no tensors
 * (malloc'd; *len its size), for the model loaders' config parsers. */
static inline uint8_t *fuzz_config_file(const char *js, size_t *len)
{
    size_t e = glad_json_escape(NULL, 0, js);
    const char *pre = "{\"__metadata__\":{\"config\":", *post = "}}";
    size_t hl = strlen(pre) + e + strlen(post);
    uint8_t *b = malloc(8 + hl + 1);
    if (!b) return NULL;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> 8 * i);
    char *h = (char *)b + 8;
    memcpy(h, pre, strlen(pre));
    glad_json_escape(h + strlen(pre), e + 1, js);
    memcpy(h + strlen(pre) + e, post, strlen(post));
    *len = 8 + hl;
    return b;
}

#endif
