/* record.c - the in-memory record (an ordered list of typed fields), its
 * getters (numbers also from numpy scalars kept raw) and setters, and the
 * header helpers (history, end-marker promise). Encoding a record to msgpack
 * and decoding it are in stream.c; msgpack is unpacked here only to read a
 * raw value (history, numpy scalars). */
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>
#include "io/record.h"

void glad_record_init(glad_record *r) { memset(r, 0, sizeof *r); }

static void field_free(glad_field *f)
{
    free(f->key);
    free(f->s);
    free(f->raw);
    glad_tensor_free(&f->t);
    memset(f, 0, sizeof *f);
}

void glad_record_free(glad_record *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++) field_free(&r->f[i]);
    free(r->f);
    memset(r, 0, sizeof *r);
}

static int field_copy(glad_field *d, const glad_field *s)
{
    memset(d, 0, sizeof *d);
    *d = *s;
    d->key = NULL; d->s = NULL; d->raw = NULL;
    memset(&d->t, 0, sizeof d->t);
    if (!(d->key = strdup(s->key))) goto nomem;
    if (s->s && !(d->s = strdup(s->s))) goto nomem;
    if (s->raw) {
        if (!(d->raw = malloc(s->n ? s->n : 1))) goto nomem;
        memcpy(d->raw, s->raw, s->n);
    }
    if (s->kind == GLAD_VAL_TENSOR && glad_tensor_copy(&d->t, &s->t) < 0) goto nomem;
    return 0;
nomem:
    field_free(d);
    return GLAD_ENOMEM;
}

int glad_record_copy(glad_record *dst, const glad_record *src)
{
    glad_record r;
    glad_record_init(&r);
    if (src->n) {
        r.f = calloc((size_t)src->n, sizeof *r.f);
        if (!r.f) return GLAD_ENOMEM;
        r.cap = src->n;
    }
    for (int i = 0; i < src->n; i++) {
        int rc = field_copy(&r.f[i], &src->f[i]);
        if (rc) { glad_record_free(&r); return rc; }
        r.n++;
    }
    *dst = r;
    return 0;
}

glad_field *glad_record_find(const glad_record *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->f[i].key, key) == 0) return &r->f[i];
    return NULL;
}

int glad_record_remove(glad_record *r, const char *key)
{
    glad_field *f = glad_record_find(r, key);
    if (!f) return GLAD_ENOTFOUND;
    int i = (int)(f - r->f);
    field_free(f);
    memmove(&r->f[i], &r->f[i + 1], (size_t)(r->n - i - 1) * sizeof *r->f);
    r->n--;
    return 0;
}

int glad_record_get_str(const glad_record *r, const char *key, const char **s)
{
    glad_field *f = glad_record_find(r, key);
    if (!f) return GLAD_ENOTFOUND;
    if (f->kind != GLAD_VAL_STR) return GLAD_EDTYPE;
    *s = f->s;
    return 0;
}

/* A numpy scalar as msgpack-numpy writes np.float32(0.5) / np.int64(1):
 * {nd: false, type: "<f4", kind: "" (optional), data: <itemsize bytes>},
 * kept raw in the record (so it is written back unchanged). Returns 0 and
 * the value (as a 0-d tensor view *t, data copied to *buf), or GLAD_EDTYPE. */
static int numpy_scalar(const glad_field *f, glad_tensor *t, uint64_t buf[2])
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = GLAD_EDTYPE;
    if (msgpack_unpack_next(&up, (const char *)f->raw, f->n, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP) goto out;
    const msgpack_object *m = &up.data, *nd = NULL, *ty = NULL, *kind = NULL, *data = NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        const char *kp = k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : k->type == MSGPACK_OBJECT_BIN ? k->via.bin.ptr : NULL;
        uint32_t kl = k->type == MSGPACK_OBJECT_STR ? k->via.str.size : k->via.bin.size;
        if (!kp) goto out;
        if (kl == 2 && !memcmp(kp, "nd", 2)) nd = v;
        else if (kl == 4 && !memcmp(kp, "type", 4)) ty = v;
        else if (kl == 4 && !memcmp(kp, "kind", 4)) kind = v;
        else if (kl == 4 && !memcmp(kp, "data", 4)) data = v;
        else goto out;
    }
    if (!nd || nd->type != MSGPACK_OBJECT_BOOLEAN || nd->via.boolean || !ty || !data) goto out;
    if (kind && !((kind->type == MSGPACK_OBJECT_BIN || kind->type == MSGPACK_OBJECT_STR) && kind->via.bin.size == 0)) goto out;
    if ((ty->type != MSGPACK_OBJECT_STR && ty->type != MSGPACK_OBJECT_BIN) ||
        (data->type != MSGPACK_OBJECT_STR && data->type != MSGPACK_OBJECT_BIN)) goto out;
    glad_dtype dt;
    if (glad_dtype_parse(ty->via.bin.ptr, ty->via.bin.size, &dt) || data->via.bin.size != glad_dtype_size(dt)) goto out;
    memset(t, 0, sizeof *t);
    memcpy(buf, data->via.bin.ptr, data->via.bin.size);   /* aligned copy */
    t->dtype = dt;
    t->ndim = 0;
    t->data = buf;
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

int glad_record_get_int(const glad_record *r, const char *key, int64_t *v)
{
    glad_field *f = glad_record_find(r, key);
    if (!f) return GLAD_ENOTFOUND;
    if (f->kind == GLAD_VAL_INT || f->kind == GLAD_VAL_BOOL) { *v = f->i; return 0; }
    double d;
    if (f->kind == GLAD_VAL_FLOAT) d = f->f;
    else if (f->kind == GLAD_VAL_RAW) {
        glad_tensor t;
        uint64_t buf[2];
        if (numpy_scalar(f, &t, buf)) return GLAD_EDTYPE;
        if (t.dtype == GLAD_DT_I64) { memcpy(v, buf, 8); return 0; }   /* exact beyond 2^53 */
        if (glad_tensor_to_f64(&t, &d)) return GLAD_EDTYPE;
    } else return GLAD_EDTYPE;
    if (d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d) { *v = (int64_t)d; return 0; }
    return GLAD_EDTYPE;
}

int glad_record_get_f64(const glad_record *r, const char *key, double *v)
{
    glad_field *f = glad_record_find(r, key);
    if (!f) return GLAD_ENOTFOUND;
    if (f->kind == GLAD_VAL_INT || f->kind == GLAD_VAL_BOOL) { *v = (double)f->i; return 0; }
    if (f->kind == GLAD_VAL_FLOAT) { *v = f->f; return 0; }
    /* a one-element tensor (numpy scalar array) is accepted as a number */
    if (f->kind == GLAD_VAL_TENSOR && glad_tensor_numel(&f->t) == 1) return glad_tensor_to_f64(&f->t, v);
    if (f->kind == GLAD_VAL_RAW) {   /* a numpy scalar */
        glad_tensor t;
        uint64_t buf[2];
        if (numpy_scalar(f, &t, buf) == 0) return glad_tensor_to_f64(&t, v);
    }
    return GLAD_EDTYPE;
}

int glad_record_get_tensor(const glad_record *r, const char *key, const glad_tensor **t)
{
    glad_field *f = glad_record_find(r, key);
    if (!f) return GLAD_ENOTFOUND;
    if (f->kind != GLAD_VAL_TENSOR) return GLAD_EDTYPE;
    *t = &f->t;
    return 0;
}

const char *glad_record_id(const glad_record *r)
{
    const char *s;
    return glad_record_get_str(r, "id", &s) == 0 ? s : "?";
}

/* Slot for key: the existing field (cleared, key kept) or a new one. */
static int slot(glad_record *r, const char *key, glad_field **out)
{
    glad_field *f = glad_record_find(r, key);
    if (f) {
        char *k = f->key;
        f->key = NULL;
        field_free(f);
        f->key = k;
        *out = f;
        return 0;
    }
    glad_field *nf = glad_grow(r->f, &r->cap, r->n, sizeof *nf, 8);
    if (!nf) return GLAD_ENOMEM;
    r->f = nf;
    f = &r->f[r->n];
    memset(f, 0, sizeof *f);
    if (!(f->key = strdup(key))) return GLAD_ENOMEM;
    r->n++;
    *out = f;
    return 0;
}

int glad_record_set_str(glad_record *r, const char *key, const char *s)
{
    char *c = strdup(s);
    if (!c) return GLAD_ENOMEM;
    glad_field *f;
    int rc = slot(r, key, &f);
    if (rc) { free(c); return rc; }
    f->kind = GLAD_VAL_STR; f->s = c; f->n = strlen(c);
    return 0;
}

int glad_record_set_int(glad_record *r, const char *key, int64_t v)
{
    glad_field *f;
    GLAD_TRY(slot(r, key, &f));
    f->kind = GLAD_VAL_INT; f->i = v;
    return 0;
}

int glad_record_set_f64(glad_record *r, const char *key, double v)
{
    glad_field *f;
    GLAD_TRY(slot(r, key, &f));
    f->kind = GLAD_VAL_FLOAT; f->f = v;
    return 0;
}

int glad_record_set_bool(glad_record *r, const char *key, int v)
{
    glad_field *f;
    GLAD_TRY(slot(r, key, &f));
    f->kind = GLAD_VAL_BOOL; f->i = v != 0;
    return 0;
}

int glad_record_set_tensor(glad_record *r, const char *key, glad_tensor *t)
{
    glad_field *f;
    GLAD_TRY(slot(r, key, &f));
    f->kind = GLAD_VAL_TENSOR;
    f->t = *t;
    memset(t, 0, sizeof *t);
    return 0;
}

int glad_record_set_raw(glad_record *r, const char *key, const uint8_t *raw, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (!c) return GLAD_ENOMEM;
    memcpy(c, raw, n);
    glad_field *f;
    int rc = slot(r, key, &f);
    if (rc) { free(c); return rc; }
    f->kind = GLAD_VAL_RAW; f->raw = c; f->n = n;
    return 0;
}

/* ---- header ---- */

int glad_header_init(glad_record *h)
{
    glad_record_init(h);
    GLAD_TRY(glad_record_set_int(h, "glad", 1));
    static const uint8_t empty_array = 0x90;
    GLAD_TRY(glad_record_set_raw(h, "history", &empty_array, 1));
    return glad_record_set_bool(h, "trailer", 1);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int glad_header_append(glad_record *h, const char *tool, const char *version, int argc, char **argv)
{
    glad_field *f = glad_record_find(h, "history");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object_array *old = NULL;
    if (f && f->kind == GLAD_VAL_RAW) {
        size_t off = 0;
        if (msgpack_unpack_next(&up, (const char *)f->raw, f->n, &off) == MSGPACK_UNPACK_SUCCESS &&
            up.data.type == MSGPACK_OBJECT_ARRAY)
            old = &up.data.via.array;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint32_t n = old ? old->size : 0;
    msgpack_pack_array(&pk, n + 1);
    for (uint32_t i = 0; i < n; i++) msgpack_pack_object(&pk, old->ptr[i]);
    msgpack_pack_map(&pk, 3);
    pack_cstr(&pk, "tool"); pack_cstr(&pk, tool);
    pack_cstr(&pk, "version"); pack_cstr(&pk, version);
    pack_cstr(&pk, "args");
    msgpack_pack_array(&pk, argc > 1 ? (size_t)(argc - 1) : 0);
    for (int i = 1; i < argc; i++) pack_cstr(&pk, argv[i]);
    int rc = sb.data ? glad_record_set_raw(h, "history", (const uint8_t *)sb.data, sb.size) : GLAD_ENOMEM;
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    if (rc == 0 && !glad_record_find(h, "glad")) rc = glad_record_set_int(h, "glad", 1);
    /* streams written by glad end with {"glad_end": count}, so truncation is detectable */
    if (rc == 0) rc = glad_record_set_bool(h, "trailer", 1);
    return rc;
}

static char *obj_strdup(const msgpack_object *o)
{
    const char *p = NULL;
    size_t n = 0;
    if (o->type == MSGPACK_OBJECT_STR) { p = o->via.str.ptr; n = o->via.str.size; }
    else if (o->type == MSGPACK_OBJECT_BIN) { p = o->via.bin.ptr; n = o->via.bin.size; }
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if ((k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl && memcmp(k->via.str.ptr, key, kl) == 0) ||
            (k->type == MSGPACK_OBJECT_BIN && k->via.bin.size == kl && memcmp(k->via.bin.ptr, key, kl) == 0))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

void glad_history_free(glad_history *h)
{
    for (int i = 0; i < h->n; i++) { free(h->tool[i]); free(h->version[i]); free(h->args[i]); }
    free(h->tool); free(h->version); free(h->args);
    memset(h, 0, sizeof *h);
}

int glad_header_history(const glad_record *hdr, glad_history *out)
{
    memset(out, 0, sizeof *out);
    glad_field *f = glad_record_find(hdr, "history");
    if (!f || f->kind != GLAD_VAL_RAW) return 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = 0;
    if (msgpack_unpack_next(&up, (const char *)f->raw, f->n, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_ARRAY) { rc = GLAD_EFORMAT; goto out; }
    uint32_t n = up.data.via.array.size;
    out->tool = calloc(n + 1, sizeof(char *));
    out->version = calloc(n + 1, sizeof(char *));
    out->args = calloc(n + 1, sizeof(char *));
    if (!out->tool || !out->version || !out->args) { rc = GLAD_ENOMEM; goto out; }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &up.data.via.array.ptr[i];
        const msgpack_object *t = map_get(e, "tool"), *v = map_get(e, "version"), *a = map_get(e, "args");
        static const msgpack_object none = {.type = MSGPACK_OBJECT_NIL};
        out->tool[i] = obj_strdup(t ? t : &none);
        out->version[i] = obj_strdup(v ? v : &none);
        size_t len = 1;
        if (a && a->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t k = 0; k < a->via.array.size; k++) {
                const msgpack_object *s = &a->via.array.ptr[k];
                len += (s->type == MSGPACK_OBJECT_STR ? s->via.str.size : 0) + 1;
            }
        out->args[i] = malloc(len);
        out->n = (int)i + 1;
        if (!out->tool[i] || !out->version[i] || !out->args[i]) { rc = GLAD_ENOMEM; goto out; }
        char *p = out->args[i];
        *p = 0;
        if (a && a->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t k = 0; k < a->via.array.size; k++) {
                const msgpack_object *s = &a->via.array.ptr[k];
                if (s->type != MSGPACK_OBJECT_STR) continue;
                if (p != out->args[i]) *p++ = ' ';
                memcpy(p, s->via.str.ptr, s->via.str.size);
                p += s->via.str.size;
                *p = 0;
            }
    }
out:
    msgpack_unpacked_destroy(&up);
    if (rc) glad_history_free(out);
    return rc;
}

int glad_history_collect(glad_history **list, int *n, int *cap, const glad_record *header)
{
    glad_history h;
    if (glad_header_history(header, &h) < 0) return 0;   /* no usable history: nothing to add */
    if (h.n == 0) { glad_history_free(&h); return 0; }
    for (int k = 0; k < *n; k++) {
        const glad_history *o = &(*list)[k];
        int same = o->n == h.n;
        for (int i = 0; same && i < h.n; i++)
            same = strcmp(o->tool[i], h.tool[i]) == 0 && strcmp(o->args[i], h.args[i]) == 0;
        if (same) { glad_history_free(&h); return 0; }
    }
    glad_history *q = glad_grow(*list, cap, *n, sizeof *q, 4);
    if (!q) { glad_history_free(&h); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    *list = q;
    (*list)[(*n)++] = h;
    return 0;
}
