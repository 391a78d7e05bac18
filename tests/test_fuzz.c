/* test_fuzz.c - replays the fuzz harnesses' committed inputs (tests/fuzz/:
 * the seed corpus in corpus/<harness>/ and every input a fuzzer once
 * crashed on in regress/<harness>/) through the same harness functions
 * libFuzzer calls, compiled here with the normal build. So a fixed crash
 * stays fixed under `make check` and `make asan-check` without clang. */
#define GLAD_FUZZ_REPLAY 1
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "check.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_config.c"
#include "fuzz/fuzz_image.c"
#include "fuzz/fuzz_json.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_sdconfig.c"
#include "fuzz/fuzz_stream.c"
#include "fuzz/fuzz_tflite.c"

int fuzz_failures;

static const struct { const char *name; int (*fn)(const uint8_t *, size_t); } harnesses[] = {
    {"stream", fuzz_stream}, {"stream_zstd", fuzz_stream_zstd}, {"image_png", fuzz_image_png},
    {"image_jpeg", fuzz_image_jpeg}, {"image_tiff", fuzz_image_tiff}, {"image_bmp", fuzz_image_bmp},
    {"safetensors", fuzz_safetensors}, {"tflite", fuzz_tflite}, {"json", fuzz_json}, {"config", fuzz_config},
    {"sdconfig", fuzz_sdconfig},
};

/* every regular file of dir through fn; returns the count, -1 without dir */
static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *dp = opendir(dir);
    if (!dp) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        uint8_t *b = fuzz_slurp(path, &n);
        CHECKF(b != NULL, "cannot read %s", path);
        if (!b) continue;
        int before = fuzz_failures;
        fn(b, n);
        CHECKF(fuzz_failures == before, "%s: harness invariant broken", path);
        free(b);
        count++;
    }
    closedir(dp);
    return count;
}

/* fn() in a child process allowed 1 GB of address space beyond what it has,
 * so an allocation the input does not justify fails visibly: its exit code,
 * or -1 (skipped) under AddressSanitizer, whose shadow needs terabytes. */
static int with_memory_cap(int (*fn)(void))
{
#if defined(__SANITIZE_ADDRESS__)
    (void)fn;
    return -1;
#else
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f && fscanf(f, "%ld", &pages) != 1) pages = 0;
        if (f) fclose(f);
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
        struct rlimit rl = {cap, cap};
        if (pages <= 0 || setrlimit(RLIMIT_AS, &rl) != 0) _exit(100);
        _exit(fn());
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 100) return -1;
    return WEXITSTATUS(st);
#endif
}

/* a ViT config asking for 6.6 GB of weights, in a file with no tensors */
static int vit_config_only(void)
{
    static const char js[] = "{\"patch_size\":16,\"embed_dim\":8192,\"depth\":2,\"num_heads\":64,\"pos_grid\":64}";
    size_t len;
    uint8_t *file = fuzz_config_file(js, &len);
    const char *path = file ? fuzz_memfile(file, len) : NULL;
    glad_vit *v = NULL;
    int rc = path ? glad_vit_load(&v, path) : 0;
    glad_vit_free(v);
    free(file);
    return rc == GLAD_ENOTFOUND ? 0 : 1;   /* the old code ran out of memory first */
}

/* a 636-byte JPEG declaring 6000x6000: its data ends after 12x10 pixels */
static int jpeg_truncated_big(void)
{
    size_t n;
    uint8_t *b = fuzz_slurp("tests/fuzz/regress/image_jpeg/truncated-6000x6000.jpg", &n);
    if (!b) return 2;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    glad_tensor t;
    int rc = glad_image_read_mem(b, n, &t);
    getrusage(RUSAGE_SELF, &r1);
    free(b);
    if (rc == 0) glad_tensor_free(&t);
    /* the old code decoded all 6000 rows of padding (108 MB touched, seconds) before refusing it */
    return rc == GLAD_EFORMAT && r1.ru_maxrss - r0.ru_maxrss < 32 * 1024 ? 0 : 1;
}

/* fn() in a child process (so its peak memory is its own); its exit code or -1 */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(fn());
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* Findings whose old behaviour does not crash a build without sanitizers
 * (an allocation that merely fails), checked by their visible effect. */
static void regressions(void)
{
    /* a NUL byte after a number was taken as part of it ("[1\0]" parsed as [1]) */
    glad_json *j = NULL;
    CHECK(glad_json_parse("[1\0]", 4, &j) == GLAD_EFORMAT);
    glad_json_free(j);
    j = NULL;
    CHECK(glad_json_parse("[1]", 3, &j) == 0);
    glad_json_free(j);
    /* a high surrogate then an escape that is no low surrogate: the old code
     * made 4 bytes of nonsense of both and lost the second character */
    j = NULL;
    CHECK(glad_json_parse("\"\\ud800\\u0041\"", 14, &j) == GLAD_EFORMAT);
    glad_json_free(j);
    j = NULL;
    CHECK(glad_json_parse("\"\\ud83d\\ude00\"", 14, &j) == 0 && j && strcmp(j->str, "\xf0\x9f\x98\x80") == 0);
    glad_json_free(j);
    CHECKF(in_child(jpeg_truncated_big) == 0, "a truncated JPEG declaring 6000x6000 was decoded to the end");
    int capped = with_memory_cap(vit_config_only);
    if (capped < 0) SKIP("ViT allocation check (no address-space cap under AddressSanitizer)");
    else CHECKF(capped == 0, "glad_vit_load allocated the weights of a config before finding its tensors");
    glad_record r;
    glad_record_init(&r);
    /* a map declaring 2^32-1 pairs in 5 bytes: refused as absurd before
     * msgpack-c allocates 200 GB for it (the old code tried, then said EFORMAT) */
    CHECK(glad_record_decode((const uint8_t *)"\xdf\xff\xff\xff\xff", 5, &r) == GLAD_ERANGE);
    CHECK(glad_record_decode((const uint8_t *)"\x81\xa1k\xdd\x00\x10\x00\x00", 8, &r) == GLAD_EFORMAT);
}

int main(void)
{
    regressions();
    for (size_t i = 0; i < sizeof harnesses / sizeof *harnesses; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", harnesses[i].name);
        int n = replay_dir(dir, harnesses[i].fn);
        CHECKF(n > 0, "%s: no seed corpus", dir);
        snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", harnesses[i].name);
        replay_dir(dir, harnesses[i].fn);
    }
    return check_done();
}
