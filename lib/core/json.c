/* json.c - recursive-descent JSON parser into a small DOM (json.h). Depth is
 * limited to 64; every read is bounded by the input length. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "core/json.h"

typedef struct { const char *s; size_t n, i; int depth; } jp;

static void skip_ws(jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int parse_value(jp *p, glad_json *out);

static int hex4(jp *p, unsigned *v)
{
    if (p->n - p->i < 4) return GLAD_EFORMAT;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return GLAD_EFORMAT;
    }
    return 0;
}

static int parse_string(jp *p, char **out)
{
    if (p->i >= p->n || p->s[p->i] != '"') return GLAD_EFORMAT;
    p->i++;
    /* the unescaped string is never longer than the escaped one */
    size_t start = p->i, end = start;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) return GLAD_EFORMAT;
    char *buf = malloc(end - start + 1), *o = buf;
    if (!buf) return GLAD_ENOMEM;
    while (p->i < end) {
        char c = p->s[p->i++];
        if (c != '\\') { *o++ = c; continue; }
        if (p->i >= p->n) goto bad;
        c = p->s[p->i++];
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) goto bad;
            if (cp >= 0xd800 && cp < 0xdc00 && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                unsigned lo;
                p->i += 2;
                if (hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) goto bad;   /* not a pair: no code point */
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* UTF-8 encode: at most 4 bytes, and an escape took >= 6 input bytes */
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xc0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3f)); }
            else if (cp < 0x10000) { *o++ = (char)(0xe0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 0x3f)); *o++ = (char)(0x80 | (cp & 0x3f)); }
            else { *o++ = (char)(0xf0 | cp >> 18); *o++ = (char)(0x80 | ((cp >> 12) & 0x3f)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3f)); *o++ = (char)(0x80 | (cp & 0x3f)); }
            break;
        }
        default: goto bad;
        }
    }
    if (p->i > end) goto bad;   /* an escape ran past the closing quote */
    *o = 0;
    p->i = end + 1;
    *out = buf;
    return 0;
bad:
    free(buf);
    return GLAD_EFORMAT;
}

static int push(glad_json *arr, glad_json *v, char *key)
{
    if ((arr->n & (arr->n - 1)) == 0) {   /* grow at powers of two */
        size_t cap = arr->n ? (size_t)arr->n * 2 : 1;
        glad_json *ni = realloc(arr->items, cap * sizeof *ni);
        if (!ni) return GLAD_ENOMEM;
        arr->items = ni;
        if (arr->type == GLAD_JSON_OBJ) {
            char **nk = realloc(arr->keys, cap * sizeof *nk);
            if (!nk) return GLAD_ENOMEM;
            arr->keys = nk;
        }
    }
    arr->items[arr->n] = *v;
    if (arr->type == GLAD_JSON_OBJ) arr->keys[arr->n] = key;
    arr->n++;
    return 0;
}

static void free_inner(glad_json *j)
{
    if (!j) return;
    free(j->str);
    for (int i = 0; i < j->n; i++) {
        free_inner(&j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
}

static int by_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* RFC 8259 leaves an object whose names repeat to the reader; here it is an
 * error: glad_json_get would silently take the first, so a config giving a
 * key twice would be read as something it does not say (and a safetensors
 * header's second __metadata__ once replaced the first's arrays). A few keys
 * compare pairwise, more are sorted: n log n on any input. */
static int unique_keys(const glad_json *obj)
{
    int n = obj->n;
    if (n <= 8) {
        for (int i = 1; i < n; i++)
            for (int k = 0; k < i; k++)
                if (strcmp(obj->keys[i], obj->keys[k]) == 0) return GLAD_EFORMAT;
        return 0;
    }
    char **s = malloc((size_t)n * sizeof *s);
    if (!s) return GLAD_ENOMEM;
    memcpy(s, obj->keys, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, by_key);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++)
        if (strcmp(s[i - 1], s[i]) == 0) rc = GLAD_EFORMAT;
    free(s);
    return rc;
}

static int parse_container(jp *p, glad_json *out, int obj)
{
    char close = obj ? '}' : ']';
    out->type = obj ? GLAD_JSON_OBJ : GLAD_JSON_ARR;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
        char *key = NULL;
        glad_json v;
        memset(&v, 0, sizeof v);
        skip_ws(p);
        if (obj) {
            if (parse_string(p, &key)) return GLAD_EFORMAT;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); return GLAD_EFORMAT; }
            p->i++;
        }
        int rc = parse_value(p, &v);
        if (rc == 0) rc = push(out, &v, key);
        if (rc) { free(key); free_inner(&v); return rc; }
        skip_ws(p);
        if (p->i >= p->n) return GLAD_EFORMAT;
        if (p->s[p->i] == ',') { p->i++; continue; }
        if (p->s[p->i] == close) { p->i++; return obj ? unique_keys(out) : 0; }
        return GLAD_EFORMAT;
    }
}

static int parse_value(jp *p, glad_json *out)
{
    memset(out, 0, sizeof *out);
    skip_ws(p);
    if (p->i >= p->n) return GLAD_EFORMAT;
    char c = p->s[p->i];
    if (c == '{' || c == '[') {
        if (++p->depth > 64) return GLAD_EFORMAT;
        int rc = parse_container(p, out, c == '{');
        p->depth--;
        return rc;
    }
    if (c == '"') { out->type = GLAD_JSON_STR; return parse_string(p, &out->str); }
    static const struct { const char *w; glad_json_type t; double v; } lits[] = {
        {"true", GLAD_JSON_BOOL, 1}, {"false", GLAD_JSON_BOOL, 0}, {"null", GLAD_JSON_NULL, 0},
        {"NaN", GLAD_JSON_NUM, 0}, {"Infinity", GLAD_JSON_NUM, 0}};
    for (size_t k = 0; k < sizeof lits / sizeof *lits; k++) {
        size_t l = strlen(lits[k].w);
        if (p->n - p->i >= l && memcmp(p->s + p->i, lits[k].w, l) == 0) {
            if (lits[k].t == GLAD_JSON_NUM) return GLAD_EFORMAT;   /* not JSON */
            out->type = lits[k].t; out->num = lits[k].v; p->i += l;
            return 0;
        }
    }
    /* number: copy the lexeme (bounded) and strtod it */
    size_t j = p->i;
    while (j < p->n && j - p->i < 64 && p->s[j] && strchr("+-0123456789.eE", p->s[j])) j++;   /* strchr finds a NUL too */
    if (j == p->i || j - p->i >= 64) return GLAD_EFORMAT;
    char buf[64], *end;
    memcpy(buf, p->s + p->i, j - p->i);
    buf[j - p->i] = 0;
    out->num = strtod(buf, &end);
    if (*end) return GLAD_EFORMAT;
    out->type = GLAD_JSON_NUM;
    p->i = j;
    return 0;
}

int glad_json_parse(const char *s, size_t len, glad_json **out)
{
    jp p = {s, len, 0, 0};
    glad_json *j = calloc(1, sizeof *j);
    if (!j) return GLAD_ENOMEM;
    int rc = parse_value(&p, j);
    if (rc == 0) { skip_ws(&p); if (p.i != p.n) rc = GLAD_EFORMAT; }
    if (rc) { glad_json_free(j); return rc; }
    *out = j;
    return 0;
}

void glad_json_free(glad_json *j)
{
    if (!j) return;
    free_inner(j);
    free(j);
}

const glad_json *glad_json_get(const glad_json *obj, const char *key)
{
    if (!obj || obj->type != GLAD_JSON_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

const glad_json *glad_json_at(const glad_json *arr, int i)
{
    if (!arr || (arr->type != GLAD_JSON_ARR && arr->type != GLAD_JSON_OBJ) || i < 0 || i >= arr->n) return NULL;
    return &arr->items[i];
}

double glad_json_num(const glad_json *j, double dflt)
{
    return j && (j->type == GLAD_JSON_NUM || j->type == GLAD_JSON_BOOL) ? j->num : dflt;
}

const char *glad_json_str(const glad_json *j, const char *dflt)
{
    return j && j->type == GLAD_JSON_STR ? j->str : dflt;
}

/* Length of the valid UTF-8 sequence at c (1..4) and its code point, or 0
 * for a byte that does not start one (overlong forms, surrogates and code
 * points past U+10FFFF are invalid). The nul terminator stops any sequence. */
static int utf8_seq(const unsigned char *c, unsigned *cp)
{
    if (c[0] < 0x80) { *cp = c[0]; return 1; }
    int n = c[0] >= 0xc2 && c[0] <= 0xdf ? 2 : c[0] >= 0xe0 && c[0] <= 0xef ? 3 : c[0] >= 0xf0 && c[0] <= 0xf4 ? 4 : 0;
    if (!n) return 0;
    unsigned lo = 0x80, hi = 0xbf;   /* the second byte's range */
    if (c[0] == 0xe0) lo = 0xa0;
    else if (c[0] == 0xed) hi = 0x9f;
    else if (c[0] == 0xf0) lo = 0x90;
    else if (c[0] == 0xf4) hi = 0x8f;
    if (c[1] < lo || c[1] > hi) return 0;
    *cp = c[0] & (0x7f >> n);
    for (int k = 1; k < n; k++) {
        if (c[k] < 0x80 || c[k] > 0xbf) return 0;
        *cp = *cp << 6 | (c[k] & 0x3f);
    }
    return n;
}

size_t glad_json_escape(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) buf[n] = (ch); n++; } while (0)
    PUT('"');
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        unsigned cp;
        int len = utf8_seq(c, &cp);
        if (len == 0) cp = 0xfffd, len = 1;   /* an invalid byte: U+FFFD, one per byte */
        if (cp == '"' || cp == '\\') { PUT('\\'); PUT((char)cp); }
        else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0xfffd) {   /* controls (C0, DEL, C1) */
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", cp);
            for (int k = 0; e[k]; k++) PUT(e[k]);
        } else for (int k = 0; k < len; k++) PUT((char)c[k]);
        c += len;
    }
    PUT('"');
#undef PUT
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}
