/* dataset.c - directory walking for the dataset layouts of dataset.h. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "io/dataset.h"

static int fail(glad_items *it, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->err, sizeof it->err, fmt, ap);
    va_end(ap);
    return rc;
}

void glad_items_free(glad_items *it)
{
    for (int i = 0; i < it->n; i++) {
        glad_item *x = &it->v[i];
        free(x->path); free(x->mask); free(x->cls); free(x->split); free(x->defect); free(x->id);
    }
    free(it->v);
    it->v = NULL;
    it->n = it->cap = 0;
}

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

int glad_dataset_is_image(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot, ext[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir; images only, or directories only. */
static int list_dir(const char *dir, int want_dirs, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return GLAD_EIO;
    int cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = xasprintf("%s/%s", dir, e->d_name);
        if (!full) { rc = GLAD_ENOMEM; break; }
        int ok = want_dirs ? is_dir(full) : (is_file(full) && glad_dataset_is_image(e->d_name));
        free(full);
        if (!ok) continue;
        char **nv = glad_grow(*out, &cap, *n, sizeof *nv, 64);
        if (!nv) { rc = GLAD_ENOMEM; break; }
        *out = nv;
        if (!((*out)[*n] = strdup(e->d_name))) { rc = GLAD_ENOMEM; break; }
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, (size_t)*n, sizeof(char *), cmp_str);
    return rc;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *stem_of(const char *name)
{
    char *s = strdup(name);
    if (!s) return NULL;
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = 0;
    return s;
}

static int push(glad_items *it, const char *path, const char *mask, const char *cls, const char *split,
                const char *defect, int label, const char *stem)
{
    glad_item *nv = glad_grow(it->v, &it->cap, it->n, sizeof *nv, 256);
    if (!nv) return GLAD_ENOMEM;
    it->v = nv;
    glad_item *x = &it->v[it->n];
    memset(x, 0, sizeof *x);
    x->path = strdup(path);
    x->mask = mask ? strdup(mask) : NULL;
    x->cls = strdup(cls);
    x->split = strdup(split);
    x->defect = strdup(defect);
    x->id = xasprintf("%s/%s/%s/%s", cls, split, defect, stem);
    x->label = label;
    it->n++;
    if (!x->path || (mask && !x->mask) || !x->cls || !x->split || !x->defect || !x->id) return GLAD_ENOMEM;
    return 0;
}

static int want(const char *split, const char *s) { return strcmp(split, "all") == 0 || strcmp(split, s) == 0; }

/* Add every image of dir as (cls, split, defect, label); mask_fmt names the
 * mask from (mask_dir, stem) or is NULL. */
static int add_folder(glad_items *it, const char *dir, const char *cls, const char *split, const char *defect, int label,
                      const char *mask_dir, const char *mask_suffix, int mask_required)
{
    char **names;
    int n, rc = list_dir(dir, 0, &names, &n);
    if (rc == GLAD_EIO) return fail(it, rc, "%s: cannot read directory", dir);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]), *stem = stem_of(names[i]), *mask = NULL;
        if (!path || !stem) { rc = GLAD_ENOMEM; }
        else if (mask_dir) {
            static const char *exts[] = {".png", ".bmp", ".jpg", ".tif"};
            for (size_t k = 0; k < sizeof exts / sizeof *exts && !mask; k++) {
                char *m = xasprintf("%s/%s%s%s", mask_dir, stem, mask_suffix, exts[k]);
                if (m && is_file(m)) mask = m; else free(m);
            }
            if (!mask && mask_required) rc = fail(it, GLAD_EIO, "%s: no mask %s/%s%s.png", path, mask_dir, stem, mask_suffix);
        }
        if (rc == 0) rc = push(it, path, mask, cls, split, defect, label, stem);
        free(path); free(stem); free(mask);
    }
    free_list(names, n);
    return rc;
}

static int check_root(glad_items *it, const char *root)
{
    if (!is_dir(root)) return fail(it, GLAD_EIO, "%s: no such directory", root);
    return 0;
}

/* MVTec/MPDD: <root>/<class>/{train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png} */
/* One MVTec class folder: train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.* */
static int mvtec_class(glad_items *it, const char *cdir, const char *cls, const char *split)
{
    char *train = xasprintf("%s/train/good", cdir), *test = xasprintf("%s/test", cdir);
    int rc = 0;
    if (!train || !test) rc = GLAD_ENOMEM;
    if (rc == 0 && want(split, "train") && is_dir(train)) rc = add_folder(it, train, cls, "train", "good", 0, NULL, NULL, 0);
    if (rc == 0 && want(split, "test") && is_dir(test)) {
        char **defs;
        int nd;
        rc = list_dir(test, 1, &defs, &nd);
        for (int d = 0; rc == 0 && d < nd; d++) {
            char *ddir = xasprintf("%s/%s", test, defs[d]), *gdir = xasprintf("%s/ground_truth/%s", cdir, defs[d]);
            int good = strcmp(defs[d], "good") == 0;
            if (!ddir || !gdir) rc = GLAD_ENOMEM;
            else rc = add_folder(it, ddir, cls, "test", defs[d], !good, good ? NULL : gdir, "_mask", !good);
            free(ddir); free(gdir);
        }
        free_list(defs, nd);
    }
    free(train);
    free(test);
    return rc;
}

int glad_dataset_mvtec(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(check_root(it, root));
    /* ROOT may be one class folder itself (train/good, test, ground_truth) */
    char *tg = xasprintf("%s/train/good", root), *te = xasprintf("%s/test", root);
    int single = tg && te && (is_dir(tg) || is_dir(te));
    free(tg);
    free(te);
    if (single) {
        char *copy = strdup(root);
        if (!copy) return GLAD_ENOMEM;
        size_t L = strlen(copy);
        while (L > 1 && copy[L - 1] == '/') copy[--L] = 0;
        const char *base = strrchr(copy, '/');
        int rc = mvtec_class(it, root, cls ? cls : (base ? base + 1 : copy), split);
        free(copy);
        return rc;
    }
    char **classes = NULL;
    int nc = 0, rc = 0;
    if (cls) {
        classes = malloc(sizeof(char *));
        if (!classes || !(classes[0] = strdup(cls))) { free(classes); return GLAD_ENOMEM; }
        nc = 1;
    } else if ((rc = list_dir(root, 1, &classes, &nc))) return fail(it, rc, "%s: cannot read directory", root);
    int found = 0;
    for (int c = 0; rc == 0 && c < nc; c++) {
        char *cdir = xasprintf("%s/%s", root, classes[c]);
        char *train = xasprintf("%s/train/good", cdir), *test = xasprintf("%s/test", cdir);
        if (!cdir || !train || !test) rc = GLAD_ENOMEM;
        else if (!is_dir(train) && !is_dir(test)) {
            if (cls) rc = fail(it, GLAD_EIO, "%s: not a class folder (no train/good or test)", cdir);
        } else {
            found++;
            rc = mvtec_class(it, cdir, classes[c], split);
        }
        free(cdir); free(train); free(test);
    }
    free_list(classes, nc);
    if (rc == 0 && !found) rc = fail(it, GLAD_ENOTFOUND, "%s: no class folders with train/good or test", root);
    return rc;
}

/* BTAD: <class>/train/ok, test/{ok,ko}, ground_truth/ko/<stem>.png|bmp */
int glad_dataset_btad(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(check_root(it, root));
    char **classes = NULL;
    int nc = 0, rc = 0, found = 0;
    if (cls) {
        classes = malloc(sizeof(char *));
        if (!classes || !(classes[0] = strdup(cls))) { free(classes); return GLAD_ENOMEM; }
        nc = 1;
    } else if ((rc = list_dir(root, 1, &classes, &nc))) return fail(it, rc, "%s: cannot read directory", root);
    for (int c = 0; rc == 0 && c < nc; c++) {
        char *tr = xasprintf("%s/%s/train/ok", root, classes[c]), *ok = xasprintf("%s/%s/test/ok", root, classes[c]),
             *ko = xasprintf("%s/%s/test/ko", root, classes[c]), *gt = xasprintf("%s/%s/ground_truth/ko", root, classes[c]);
        if (!tr || !ok || !ko || !gt) rc = GLAD_ENOMEM;
        else if (is_dir(tr) || is_dir(ok)) {
            found++;
            if (want(split, "train") && is_dir(tr)) rc = add_folder(it, tr, classes[c], "train", "good", 0, NULL, NULL, 0);
            if (rc == 0 && want(split, "test") && is_dir(ok)) rc = add_folder(it, ok, classes[c], "test", "good", 0, NULL, NULL, 0);
            if (rc == 0 && want(split, "test") && is_dir(ko)) rc = add_folder(it, ko, classes[c], "test", "ko", 1, gt, "", 1);
        } else if (cls) rc = fail(it, GLAD_EIO, "%s/%s: not a BTAD class folder", root, classes[c]);
        free(tr); free(ok); free(ko); free(gt);
    }
    free_list(classes, nc);
    if (rc == 0 && !found) rc = fail(it, GLAD_ENOTFOUND, "%s: no BTAD class folders", root);
    return rc;
}

/* Read a whole text file (bounded). */
static int slurp(glad_items *it, const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail(it, GLAD_EIO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (64L << 20)) { fclose(f); return fail(it, GLAD_ERANGE, "%s: too large", path); }
    char *s = malloc((size_t)n + 1);
    if (!s) { fclose(f); return GLAD_ENOMEM; }
    size_t k = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[k] = 0;
    *out = s;
    return 0;
}

/* VisA: split_csv/1cls.csv with columns object,split,label,image,mask (paths relative to root) */
int glad_dataset_visa(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(check_root(it, root));
    char *csv_path = xasprintf("%s/split_csv/1cls.csv", root), *text = NULL;
    if (!csv_path) return GLAD_ENOMEM;
    int rc = slurp(it, csv_path, &text);
    if (rc) { free(csv_path); return rc; }
    int line = 0;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln && rc == 0; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t L = strlen(ln);
        if (L && ln[L - 1] == '\r') ln[L - 1] = 0;
        if (line == 1 || !*ln) continue;   /* header */
        char *f[5] = {0}, *p = ln;
        int k = 0;
        for (; k < 5 && p; k++) { f[k] = p; p = strchr(p, ','); if (p) *p++ = 0; }
        if (k < 4) { rc = fail(it, GLAD_EFORMAT, "%s:%d: expected object,split,label,image,mask", csv_path, line); break; }
        if (cls && strcmp(f[0], cls) != 0) continue;
        const char *sp = strcmp(f[1], "train") == 0 ? "train" : "test";
        if (!want(split, sp)) continue;
        int label = strcmp(f[2], "anomaly") == 0 || strcmp(f[2], "1") == 0;
        char *img = xasprintf("%s/%s", root, f[3]), *mask = (label && f[4] && *f[4]) ? xasprintf("%s/%s", root, f[4]) : NULL;
        const char *base = strrchr(f[3], '/');
        char *stem = stem_of(base ? base + 1 : f[3]);
        if (!img || !stem) rc = GLAD_ENOMEM;
        else if (!is_file(img)) rc = fail(it, GLAD_EIO, "%s:%d: %s: no such file", csv_path, line, img);
        else rc = push(it, img, mask, f[0], sp, label ? "bad" : "good", label, stem);
        free(img); free(mask); free(stem);
    }
    if (rc == 0 && it->n == 0) rc = fail(it, GLAD_ENOTFOUND, "%s: no records%s%s", csv_path, cls ? " for class " : "", cls ? cls : "");
    free(text);
    free(csv_path);
    return rc;
}

/* MTD with a split list */
int glad_dataset_mtd(glad_items *it, const char *root, const char *list_file, const char *cls, const char *split)
{
    GLAD_TRY(check_root(it, root));
    char *text = NULL;
    int rc = 0, nl = 0;
    char **lpath = NULL, **lsplit = NULL;
    if (list_file) {
        GLAD_TRY(slurp(it, list_file, &text));
        size_t cap = 1;
        for (char *c = text; *c; c++) cap += *c == '\n';
        lpath = calloc(cap, sizeof(char *));
        lsplit = calloc(cap, sizeof(char *));
        if (!lpath || !lsplit) rc = GLAD_ENOMEM;
        char *save = NULL;
        int line = 0;
        for (char *ln = rc ? NULL : strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            line++;
            size_t L = strlen(ln);
            if (L && ln[L - 1] == '\r') ln[L - 1] = 0;
            if (!*ln || ln[0] == '#') continue;
            char *sp = strchr(ln, ' ');
            if (!sp || (strncmp(ln, "train ", 6) && strncmp(ln, "test ", 5))) {
                rc = fail(it, GLAD_EFORMAT, "%s:%d: expected 'train|test <relative path>'", list_file, line);
                break;
            }
            *sp = 0;
            lsplit[nl] = ln;
            lpath[nl] = sp + 1;
            nl++;
        }
    }
    char **types = NULL;
    int nt = 0;
    if (rc == 0 && (rc = list_dir(root, 1, &types, &nt))) rc = fail(it, rc, "%s: cannot read directory", root);
    const char *klass = cls ? cls : "mtd";
    int found = 0;
    for (int t = 0; rc == 0 && t < nt; t++) {
        if (strncmp(types[t], "MT_", 3) != 0) continue;
        found++;
        char *dir = xasprintf("%s/%s/Imgs", root, types[t]);
        char **names = NULL;
        int nn = 0;
        if (!dir) { rc = GLAD_ENOMEM; break; }
        rc = list_dir(dir, 0, &names, &nn);
        if (rc) rc = fail(it, rc, "%s: cannot read directory", dir);
        int normal = strcmp(types[t], "MT_Free") == 0;
        char defect[64];
        snprintf(defect, sizeof defect, "%s", normal ? "good" : types[t] + 3);
        for (char *c = defect; *c; c++) if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        for (int i = 0; rc == 0 && i < nn; i++) {
            const char *dot = strrchr(names[i], '.');
            if (!dot || strcasecmp(dot, ".jpg")) continue;   /* masks are the .png files */
            char *rel = xasprintf("%s/Imgs/%s", types[t], names[i]), *stem = stem_of(names[i]);
            char *img = xasprintf("%s/%s", root, rel), *mask = xasprintf("%s/%s/Imgs/%s.png", root, types[t], stem);
            if (!rel || !stem || !img || !mask) { rc = GLAD_ENOMEM; }
            else {
                const char *sp = NULL;
                for (int k = 0; k < nl && !sp; k++) if (strcmp(lpath[k], rel) == 0) sp = lsplit[k];
                if (!sp && list_file && strcmp(split, "all") != 0)
                    rc = fail(it, GLAD_ENOTFOUND, "%s: not in the split list %s (use --split all to take it as test)", img, list_file);
                else if (!sp) sp = "test";
                if (rc == 0 && want(split, sp)) {
                    if (!normal && !is_file(mask)) rc = fail(it, GLAD_EIO, "%s: no mask %s", img, mask);
                    else rc = push(it, img, normal ? NULL : mask, klass, sp, defect, !normal, stem);
                }
            }
            free(rel); free(stem); free(img); free(mask);
        }
        free_list(names, nn);
        free(dir);
    }
    free_list(types, nt);
    free(lpath); free(lsplit); free(text);
    if (rc == 0 && !found) rc = fail(it, GLAD_ENOTFOUND, "%s: no MT_* folders", root);
    return rc;
}

int glad_dataset_generic(glad_items *it, const char *normal_dir, const char *anomalous_dir, const char *masks_dir,
                         const char *cls, const char *split)
{
    int rc = 0;
    const char *sp = strcmp(split, "all") == 0 ? "test" : split;
    if (normal_dir) rc = add_folder(it, normal_dir, cls, sp, "good", 0, NULL, NULL, 0);
    if (rc == 0 && anomalous_dir) rc = add_folder(it, anomalous_dir, cls, sp, "anomalous", 1, masks_dir, "", 0);
    return rc;
}

int glad_dataset_add_path(glad_items *it, const char *path, const char *cls, const char *split, int label)
{
    if (!is_file(path)) return fail(it, GLAD_EIO, "%s: no such file", path);
    const char *base = strrchr(path, '/');
    char *stem = stem_of(base ? base + 1 : path);
    if (!stem) return GLAD_ENOMEM;
    /* ids must be unique: use the path without extension, '/' kept */
    char *p = strdup(path), *dot;
    if (!p) { free(stem); return GLAD_ENOMEM; }
    if ((dot = strrchr(p, '.')) && (!base || dot > p + (base - path))) *dot = 0;
    while (p[0] == '.' && p[1] == '/') memmove(p, p + 2, strlen(p + 2) + 1);
    int rc = push(it, path, NULL, cls, strcmp(split, "all") == 0 ? "test" : split, label ? "anomalous" : "good", label, p[0] == '/' ? p + 1 : p);
    free(stem);
    free(p);
    return rc;
}
