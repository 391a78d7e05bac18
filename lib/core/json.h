/* json.h - a small JSON DOM parser (RFC 8259) for safetensors headers, their
 * __metadata__ values and model configs. Depth-limited, bounds-checked.
 * Not a serializer beyond glad_json_escape (writers build JSON with printf). */
#ifndef GLAD_JSON_H
#define GLAD_JSON_H

#include "core/glad.h"

typedef enum { GLAD_JSON_NULL, GLAD_JSON_BOOL, GLAD_JSON_NUM, GLAD_JSON_STR,
               GLAD_JSON_ARR, GLAD_JSON_OBJ } glad_json_type;

typedef struct glad_json {
    glad_json_type type;
    double num;               /* NUM, BOOL (0/1) */
    char *str;                /* STR (nul-terminated, unescaped) */
    int n;                    /* ARR / OBJ element count */
    struct glad_json *items;  /* ARR / OBJ values */
    char **keys;              /* OBJ keys */
} glad_json;

/* GLAD_EFORMAT on bad JSON, and on an object that gives a key twice (RFC 8259
 * leaves that to the reader; glad_json_get could only take one of them) */
int glad_json_parse(const char *s, size_t len, glad_json **out);
void glad_json_free(glad_json *j);
const glad_json *glad_json_get(const glad_json *obj, const char *key);  /* NULL if absent */
const glad_json *glad_json_at(const glad_json *arr, int i);              /* NULL if out of range */
double glad_json_num(const glad_json *j, double dflt);     /* NUM/BOOL value, else dflt */
const char *glad_json_str(const glad_json *j, const char *dflt);
/* Appends s JSON-escaped with quotes into buf (size cap); returns length
 * needed. The result is always valid JSON: control characters (C0, DEL, C1)
 * become \u00XX, and every byte that is not part of valid UTF-8 becomes
 * \ufffd (the replacement character), as does a literal U+FFFD. */
size_t glad_json_escape(char *buf, size_t cap, const char *s);

#endif
