/* stream_stats.c - a libglad example: read a glad stream (FILE or standard
 * input) and print one line per field, in order of first appearance: its
 * kind, how many records have it and, for tensors and numbers, the count,
 * min, mean and max of all its finite values over the whole stream.
 *   cc $(pkg-config --cflags glad) stream_stats.c $(pkg-config --libs glad)
 *   glad-encode DATASET | ./a.out */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/stream.h"

typedef struct {
    char *key;
    const char *kind;
    long records;
    size_t values;
    double min, max, sum;
} field_stats;

static void add(field_stats *s, double v)
{
    if (!isfinite(v)) return;
    if (s->values == 0 || v < s->min) s->min = v;
    if (s->values == 0 || v > s->max) s->max = v;
    s->sum += v;
    s->values++;
}

static int add_field(field_stats *s, const glad_field *f)
{
    s->records++;
    if (f->kind == GLAD_VAL_INT || f->kind == GLAD_VAL_BOOL) add(s, (double)f->i);
    if (f->kind == GLAD_VAL_FLOAT) add(s, f->f);
    if (f->kind != GLAD_VAL_TENSOR) return 0;
    size_t n = glad_tensor_numel(&f->t), bytes;
    GLAD_TRY(glad_mul_size(n, sizeof(double), &bytes));   /* never allocate from an unchecked size */
    double *v = malloc(bytes ? bytes : 1);
    if (!v) return GLAD_ENOMEM;
    int rc = glad_tensor_to_f64(&f->t, v);
    for (size_t i = 0; rc == 0 && i < n; i++) add(s, v[i]);
    free(v);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *kinds[] = {"nil", "bool", "int", "float", "str", "tensor", "raw"};
    field_stats *st = NULL;
    int ns = 0, cap = 0, rc;
    glad_reader *rd = NULL;
    glad_record rec;
    glad_record_init(&rec);
    if ((rc = glad_reader_open(&rd, argc > 1 ? argv[1] : "-")) < 0) goto done;
    while ((rc = glad_reader_next(rd, &rec)) == 1) {
        for (int i = 0; i < rec.n && rc >= 0; i++) {
            int k = 0;
            while (k < ns && strcmp(st[k].key, rec.f[i].key)) k++;
            if (k == ns) {   /* a new field: glad_grow doubles the array */
                field_stats *g = glad_grow(st, &cap, ns, sizeof *st, 16);
                if (!g) { rc = GLAD_ENOMEM; break; }
                st = g;
                if (!(st[ns].key = glad_strfmt("%s", rec.f[i].key))) { rc = GLAD_ENOMEM; break; }
                st[ns].kind = rec.f[i].kind == GLAD_VAL_TENSOR ? glad_dtype_str(rec.f[i].t.dtype) : kinds[rec.f[i].kind];
                st[ns].records = 0; st[ns].values = 0; st[ns].sum = 0;
                ns++;
            }
            rc = add_field(&st[k], &rec.f[i]);
        }
        if (rc < 0) break;
    }
    if (rc == 0) {
        printf("%ld records\n%-12s %-6s %8s %10s %12s %12s %12s\n", glad_reader_index(rd), "field", "kind", "records",
               "values", "min", "mean", "max");
        for (int k = 0; k < ns; k++) {
            printf("%-12s %-6s %8ld", st[k].key, st[k].kind, st[k].records);
            if (st[k].values) printf(" %10zu %12.6g %12.6g %12.6g", st[k].values, st[k].min, st[k].sum / st[k].values, st[k].max);
            printf("\n");
        }
    }
done:
    if (rc < 0) {   /* the stream's own message when it has one, else the library's detail */
        const char *msg = rd && *glad_reader_error(rd) ? glad_reader_error(rd) : glad_error_detail();
        fprintf(stderr, "stream_stats: %s\n", *msg ? msg : glad_strerror(rc));
    }
    for (int k = 0; k < ns; k++) free(st[k].key);
    free(st);
    glad_record_free(&rec);
    if (rd) glad_reader_close(rd);
    return rc < 0;
}
