/* fuzz_json.c - harness for the JSON parser (core/json.h). A parsed
 * document is written back as JSON (strings through glad_json_escape,
 * numbers with 17 digits) and parsed again: the second writing must equal
 * the first, so parse and escape agree on every string and number (an
 * object whose keys escape alike is not written: glad_json_parse would refuse
 * it written back, as it refuses any key given twice). */
#include <math.h>
#include "fuzz.h"
#include "core/json.h"

typedef struct { char *s; size_t n, cap; int bad; } json_out;

static void jo_put(json_out *o, const char *s, size_t k)
{
    if (o->bad) return;
    if (o->n + k + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + k + 1) cap *= 2;
        char *ns = realloc(o->s, cap);
        if (!ns) { o->bad = 1; return; }
        o->s = ns;
        o->cap = cap;
    }
    memcpy(o->s + o->n, s, k);
    o->n += k;
    o->s[o->n] = 0;
}

static void jo_str(json_out *o, const char *s)
{
    size_t k = glad_json_escape(NULL, 0, s);
    char *e = malloc(k + 1);
    if (!e) { o->bad = 1; return; }
    FUZZ_ASSERT(glad_json_escape(e, k + 1, s) == k && strlen(e) == k);
    jo_put(o, e, k);
    free(e);
}

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* whether two of an object's keys escape alike: glad_json_escape writes every
 * invalid UTF-8 byte as \ufffd, so distinct keys can, and the object written
 * back then gives a key twice, which glad_json_parse refuses */
static int keys_collide(const glad_json *j)
{
    if (j->n < 2) return 0;
    char **e = calloc((size_t)j->n, sizeof *e);
    int hit = !e;
    for (int i = 0; !hit && i < j->n; i++) {
        size_t k = glad_json_escape(NULL, 0, j->keys[i]);
        if (!(e[i] = malloc(k + 1))) hit = 1;
        else glad_json_escape(e[i], k + 1, j->keys[i]);
    }
    if (!hit) {
        qsort(e, (size_t)j->n, sizeof *e, by_str);
        for (int i = 1; i < j->n && !hit; i++) hit = strcmp(e[i - 1], e[i]) == 0;
    }
    for (int i = 0; e && i < j->n; i++) free(e[i]);
    free(e);
    return hit;
}

static void jo_value(json_out *o, const glad_json *j)
{
    char b[40];
    switch (j->type) {
    case GLAD_JSON_NULL: jo_put(o, "null", 4); break;
    case GLAD_JSON_BOOL: jo_put(o, j->num ? "true" : "false", j->num ? 4 : 5); break;
    case GLAD_JSON_NUM:
        if (!isfinite(j->num)) { o->bad = 1; break; }   /* 1e999: no JSON spelling */
        jo_put(o, b, (size_t)snprintf(b, sizeof b, "%.17g", j->num));
        break;
    case GLAD_JSON_STR: jo_str(o, j->str); break;
    case GLAD_JSON_ARR:
    case GLAD_JSON_OBJ:
        if (j->type == GLAD_JSON_OBJ && keys_collide(j)) { o->bad = 1; break; }   /* no faithful writing */
        jo_put(o, j->type == GLAD_JSON_OBJ ? "{" : "[", 1);
        for (int i = 0; i < j->n; i++) {
            if (i) jo_put(o, ",", 1);
            if (j->type == GLAD_JSON_OBJ) {
                FUZZ_ASSERT(glad_json_get(j, j->keys[i]) != NULL);
                jo_str(o, j->keys[i]);
                jo_put(o, ":", 1);
            }
            FUZZ_ASSERT(glad_json_at(j, i) == &j->items[i]);
            jo_value(o, &j->items[i]);
        }
        jo_put(o, j->type == GLAD_JSON_OBJ ? "}" : "]", 1);
        break;
    }
}

int fuzz_json(const uint8_t *d, size_t n)
{
    glad_json *j;
    if (glad_json_parse((const char *)d, n, &j)) return 0;
    json_out a = {0}, b = {0};
    jo_value(&a, j);
    glad_json_free(j);
    if (!a.bad) {
        glad_json *k = NULL;
        int rc = glad_json_parse(a.s, a.n, &k);
        FUZZ_ASSERT(rc == 0);
        if (rc == 0) {
            jo_value(&b, k);
            FUZZ_ASSERT(!b.bad && b.n == a.n && memcmp(a.s, b.s, a.n) == 0);
            glad_json_free(k);
        }
    }
    free(a.s);
    free(b.s);
    return 0;
}
