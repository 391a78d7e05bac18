/* safetensors.c - safetensors reader (a regular file mapped read-only, any
 * other file or a failed mapping read whole into memory, or caller's bytes
 * copied; header validated: offsets inside the data section, sizes agreeing
 * with dtype x shape) and writer (a glad_outfile: complete or untouched).
 * Mapping instead of reading keeps an SD UNet's 3.4 GB in the page cache
 * once, shared and reclaimable, instead of a second private copy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/json.h"
#include "io/outfile.h"
#include "io/safetensors.h"

struct glad_st {
    uint8_t *buf;
    size_t size, data_off;
    int mapped;                /* buf is an mmap of the file (munmap at close), else malloc'd */
    int n;
    glad_st_entry *e;
    int nmeta;
    char **mkeys, **mvals;
};

static const struct { const char *name; glad_dtype dt; } st_dtypes[] = {
    {"F16", GLAD_DT_F16}, {"F32", GLAD_DT_F32}, {"F64", GLAD_DT_F64}, {"I64", GLAD_DT_I64},
    {"I32", GLAD_DT_I32}, {"I16", GLAD_DT_I16}, {"I8", GLAD_DT_I8}, {"U8", GLAD_DT_U8},
    {"U16", GLAD_DT_U16}, {"U32", GLAD_DT_U32}, {"BOOL", GLAD_DT_BOOL},
};

static int parse_dtype(const char *s, glad_dtype *dt)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) { *dt = st_dtypes[i].dt; return 0; }
    return GLAD_EUNSUPPORTED;
}

static const char *dtype_name(glad_dtype dt)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
    return NULL;
}

static int read_file(const char *path, uint8_t **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    int rc = GLAD_EIO, e = EIO;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) { e = EISDIR; goto out; }
    if (fseek(f, 0, SEEK_END) != 0) { e = errno; goto out; }
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) { e = errno; goto out; }
    if ((uint64_t)sz > GLAD_MAX_ALLOC) { fclose(f); return glad_fail(GLAD_ERANGE, "%s: %ld bytes, more than a model file may have", path, sz); }
    *buf = malloc((size_t)sz + 1);
    if (!*buf) { fclose(f); return glad_fail(GLAD_ENOMEM, "%s: out of memory", path); }
    errno = 0;
    if (fread(*buf, 1, (size_t)sz, f) != (size_t)sz) { e = errno ? errno : EIO; free(*buf); *buf = NULL; goto out; }
    *size = (size_t)sz;
    rc = 0;
out:
    fclose(f);
    return rc ? glad_fail(rc, "%s: %s", path, strerror(e)) : 0;
}

/* A regular, non-empty file within GLAD_MAX_ALLOC: mapped read-only (private;
 * the page-aligned base keeps the file's own alignment for in-place use).
 * Returns 1 when mapped, 0 when the caller should read the file instead
 * (not regular, empty, too large -- read_file says why -- or mmap refused),
 * or an error opening it. */
static int map_file(const char *path, uint8_t **buf, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= GLAD_MAX_ALLOC;
    void *p = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) return 0;
    *buf = p;
    *size = (size_t)st.st_size;
    return 1;
}

static int parse_header(glad_st *st, const glad_json *h)
{
    if (h->type != GLAD_JSON_OBJ) return GLAD_EFORMAT;
    st->e = calloc((size_t)h->n + 1, sizeof *st->e);
    if (!st->e) return GLAD_ENOMEM;
    size_t data_size = st->size - st->data_off;
    for (int i = 0; i < h->n; i++) {
        const glad_json *v = &h->items[i];
        if (strcmp(h->keys[i], "__metadata__") == 0) {
            /* glad_json_parse refuses a key given twice, which is what keeps a
             * second __metadata__ from replacing the first's arrays under the
             * count of both, and every tensor name findable; checked again here
             * as that is a memory-safety matter */
            if (v->type != GLAD_JSON_OBJ || st->mkeys) return GLAD_EFORMAT;
            st->mkeys = calloc((size_t)v->n + 1, sizeof(char *));
            st->mvals = calloc((size_t)v->n + 1, sizeof(char *));
            if (!st->mkeys || !st->mvals) return GLAD_ENOMEM;
            for (int k = 0; k < v->n; k++) {
                if (v->items[k].type != GLAD_JSON_STR) return GLAD_EFORMAT;
                st->mkeys[k] = strdup(v->keys[k]);
                st->mvals[k] = strdup(v->items[k].str);
                st->nmeta++;
                if (!st->mkeys[k] || !st->mvals[k]) return GLAD_ENOMEM;
            }
            continue;
        }
        glad_st_entry *e = &st->e[st->n];
        const glad_json *dt = glad_json_get(v, "dtype"), *sh = glad_json_get(v, "shape"),
                        *of = glad_json_get(v, "data_offsets");
        if (!dt || dt->type != GLAD_JSON_STR || !sh || sh->type != GLAD_JSON_ARR || !of ||
            of->type != GLAD_JSON_ARR || of->n != 2 || sh->n > GLAD_MAX_DIMS)
            return GLAD_EFORMAT;
        e->name = strdup(h->keys[i]);
        if (!e->name) return GLAD_ENOMEM;
        st->n++;
        GLAD_TRY(parse_dtype(dt->str, &e->dtype));
        e->ndim = sh->n;
        for (int d = 0; d < sh->n; d++) {
            double x = glad_json_num(&sh->items[d], -1);
            if (x < 0 || x > 9e15 || x != (double)(int64_t)x) return GLAD_EFORMAT;
            e->shape[d] = (int64_t)x;
        }
        double b = glad_json_num(&of->items[0], -1), en = glad_json_num(&of->items[1], -1);
        if (b < 0 || en < b || en > (double)data_size) return GLAD_EFORMAT;
        e->begin = (uint64_t)b;
        e->end = (uint64_t)en;
        size_t numel;
        GLAD_TRY(glad_tensor_numel_checked(e->ndim, e->shape, e->dtype, &numel));
        if ((uint64_t)numel * glad_dtype_size(e->dtype) != e->end - e->begin) return GLAD_EFORMAT;
    }
    return 0;
}

/* st->buf / st->size set: validate the header and index the entries */
static int st_parse(glad_st *st, const char *path)
{
    glad_json *h = NULL;
    int rc = GLAD_EFORMAT;
    if (st->size < 8) goto fail;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | st->buf[i];
    if (hl > st->size - 8) goto fail;
    st->data_off = 8 + (size_t)hl;
    GLAD_TRYG(rc, glad_json_parse((const char *)st->buf + 8, (size_t)hl, &h), fail);
    GLAD_TRYG(rc, parse_header(st, h), fail);
    glad_json_free(h);
    return 0;
fail:
    glad_json_free(h);
    return glad_fail(rc, "%s: not a valid safetensors file (%s)", path, glad_strerror(rc));
}

int glad_st_open(glad_st **out, const char *path)
{
    glad_st *st = calloc(1, sizeof *st);
    if (!st) return glad_fail(GLAD_ENOMEM, "out of memory");
    int rc = map_file(path, &st->buf, &st->size);   /* errors set their own detail */
    if (rc == 1) st->mapped = 1;
    else if (rc == 0) rc = read_file(path, &st->buf, &st->size);
    if (rc < 0 || (rc = st_parse(st, path))) { glad_st_close(st); return rc; }
    *out = st;
    return 0;
}

int glad_st_open_mem(glad_st **out, const void *data, size_t size, const char *name)
{
    if (size > GLAD_MAX_ALLOC) return glad_fail(GLAD_ERANGE, "%s: %zu bytes, more than a model file may have", name, size);
    glad_st *st = calloc(1, sizeof *st);
    if (!st || !(st->buf = malloc(size + 1))) { free(st); return glad_fail(GLAD_ENOMEM, "%s: out of memory", name); }
    if (size) memcpy(st->buf, data, size);
    st->size = size;
    int rc = st_parse(st, name);
    if (rc) { glad_st_close(st); return rc; }
    *out = st;
    return 0;
}

int glad_st_is_mapped(const glad_st *st) { return st->mapped; }

void glad_st_close(glad_st *st)
{
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->e[i].name);
    for (int i = 0; i < st->nmeta; i++) { free(st->mkeys[i]); free(st->mvals[i]); }
    free(st->mkeys); free(st->mvals); free(st->e);
    if (st->mapped) munmap(st->buf, st->size);
    else free(st->buf);
    free(st);
}

int glad_st_count(const glad_st *st) { return st->n; }
const glad_st_entry *glad_st_entry_at(const glad_st *st, int i) { return i >= 0 && i < st->n ? &st->e[i] : NULL; }

const glad_st_entry *glad_st_find(const glad_st *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->e[i].name, name) == 0) return &st->e[i];
    return NULL;
}

const void *glad_st_data(const glad_st *st, const glad_st_entry *e) { return st->buf + st->data_off + e->begin; }

int glad_st_get(const glad_st *st, const char *name, glad_tensor *out)
{
    const glad_st_entry *e = glad_st_find(st, name);
    if (!e) return GLAD_ENOTFOUND;
    GLAD_TRY(glad_tensor_alloc(out, e->dtype, e->ndim, e->shape));
    memcpy(out->data, glad_st_data(st, e), e->end - e->begin);
    return 0;
}

int glad_st_get_f32(const glad_st *st, const char *name, glad_tensor *out)
{
    glad_tensor t;
    GLAD_TRY(glad_st_get(st, name, &t));
    if (t.dtype == GLAD_DT_F32) { *out = t; return 0; }
    int rc = glad_tensor_convert(out, &t, GLAD_DT_F32);
    glad_tensor_free(&t);
    return rc;
}

const char *glad_st_meta(const glad_st *st, const char *key)
{
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->mkeys[i], key) == 0) return st->mvals[i];
    return NULL;
}
int glad_st_meta_count(const glad_st *st) { return st->nmeta; }
const char *glad_st_meta_key(const glad_st *st, int i) { return i >= 0 && i < st->nmeta ? st->mkeys[i] : NULL; }

/* Growable text buffer for the JSON header. */
typedef struct { char *s; size_t n, cap; int err; } sbuf;
static void sb_put(sbuf *b, const char *s, size_t len)
{
    if (b->err) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap : 256);
        while (cap < b->n + len + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->err = 1; return; }
        b->s = ns; b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_json(sbuf *b, const char *s)
{
    size_t need = glad_json_escape(NULL, 0, s);
    char *tmp = malloc(need + 1);
    if (!tmp) { b->err = 1; return; }
    glad_json_escape(tmp, need + 1, s);
    sb_put(b, tmp, need);
    free(tmp);
}

int glad_st_save(const char *path, int n, const char *const *names, const glad_tensor *const *tensors,
                 int nmeta, const char *const *meta_keys, const char *const *meta_vals)
{
    sbuf h = {0};
    char num[128];
    uint64_t off = 0;
    sb_str(&h, "{");
    if (nmeta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_str(&h, ",");
            sb_json(&h, meta_keys[i]); sb_str(&h, ":"); sb_json(&h, meta_vals[i]);
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < n; i++) {
        const glad_tensor *t = tensors[i];
        const char *dn = dtype_name(t->dtype);
        if (!dn) { free(h.s); return GLAD_EDTYPE; }
        if (i || nmeta > 0) sb_str(&h, ",");
        sb_json(&h, names[i]);
        sb_str(&h, ":{\"dtype\":\""); sb_str(&h, dn); sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_str(&h, num);
        }
        uint64_t sz = glad_tensor_nbytes(t);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + sz));
        sb_str(&h, num);
        off += sz;
    }
    sb_str(&h, "}");
    /* pad the header with spaces to a multiple of 8 so the data is aligned */
    while (!h.err && h.n % 8) sb_str(&h, " ");
    if (h.err) { free(h.s); return GLAD_ENOMEM; }
    /* write only a header glad_st_open reads back: a name or metadata key given
     * twice (or two that escape alike, or a tensor called __metadata__) would
     * make a file no reader takes */
    glad_json *chk = NULL;
    int rc = glad_json_parse(h.s, h.n, &chk);
    glad_json_free(chk);
    if (rc) { free(h.s); return rc == GLAD_EFORMAT ? glad_fail(GLAD_EINVAL, "%s: a tensor name or metadata key given twice", path) : rc; }

    glad_outfile *of;
    rc = glad_outfile_open(&of, path, GLAD_OUTFILE_FSYNC);
    if (rc) { free(h.s); return rc; }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    rc = glad_outfile_write(of, len8, 8);
    if (!rc) rc = glad_outfile_write(of, h.s, h.n);
    for (int i = 0; !rc && i < n; i++) rc = glad_outfile_write(of, tensors[i]->data, glad_tensor_nbytes(tensors[i]));
    if (rc) glad_outfile_abort(of);
    else rc = glad_outfile_commit(of);
    free(h.s);
    return rc;
}
