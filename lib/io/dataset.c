/* dataset.c - directory walking for the dataset layouts of dataset.h: sorted
 * listings, mask lookup, split lists, and the item list with its shuffle.
 * Failures go through glad_fail with the path (and line) at fault. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "core/rng.h"
#include "io/dataset.h"

const char *const glad_dataset_formats[] = {"mvtec", "mpdd", "visa", "btad", "mtd", "generic", NULL};
const char *const glad_dataset_splits[] = {"train", "test", "all", NULL};

static int nomem(void) { return glad_fail(GLAD_ENOMEM, "out of memory"); }

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

void glad_items_shuffle(glad_items *it, uint64_t seed)
{
    glad_rng r;
    glad_rng_seed(&r, seed, glad_rng_hash_str("glad_items_shuffle"), 0);
    for (int i = it->n - 1; i > 0; i--) {
        int j = (int)glad_rng_below(&r, (uint64_t)i + 1);
        glad_item t = it->v[i]; it->v[i] = it->v[j]; it->v[j] = t;
    }
}

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

/* Why p is not a regular file: "No such file or directory", "Is a directory", ... */
static const char *not_file(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0) return strerror(errno);
    return S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
}

/* A directory the caller named must exist: "DIR: No such file or directory", "DIR: Not a directory". */
static int need_dir(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0) return glad_fail(GLAD_EIO, "%s: %s", p, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return glad_fail(GLAD_EIO, "%s: %s", p, strerror(ENOTDIR));
    return 0;
}

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

/* Sorted names in dir; images only, or directories only. An image name that
 * does not resolve (a broken symbolic link) is an error, not skipped. */
static int list_dir(const char *dir, int want_dirs, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return glad_fail(GLAD_EIO, "%s: %s", dir, strerror(errno));
    int cap = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = glad_strfmt("%s/%s", dir, e->d_name);
        if (!full) { rc = nomem(); break; }
        struct stat st;
        int ok;
        if (stat(full, &st) != 0) {
            int err = errno;
            ok = 0;
            if (!want_dirs && glad_dataset_is_image(e->d_name)) {
                int link = lstat(full, &st) == 0 && S_ISLNK(st.st_mode);
                rc = glad_fail(GLAD_EIO, "%s: %s%s", full, strerror(err), link ? " (a broken symbolic link)" : "");
            }
        } else ok = want_dirs ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) && glad_dataset_is_image(e->d_name));
        free(full);
        if (!ok) continue;
        char **nv = glad_grow(*out, &cap, *n, sizeof *nv, 64);
        if (!nv) { rc = nomem(); break; }
        *out = nv;
        if (!((*out)[*n] = strdup(e->d_name))) { rc = nomem(); break; }
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
    if (!nv) return nomem();
    it->v = nv;
    glad_item *x = &it->v[it->n];
    memset(x, 0, sizeof *x);
    x->path = strdup(path);
    x->mask = mask ? strdup(mask) : NULL;
    x->cls = strdup(cls);
    x->split = strdup(split);
    x->defect = strdup(defect);
    x->id = glad_strfmt("%s/%s/%s/%s", cls, split, defect, stem);
    x->label = label;
    it->n++;
    if (!x->path || (mask && !x->mask) || !x->cls || !x->split || !x->defect || !x->id) return nomem();
    return 0;
}

static int want(const char *split, const char *s) { return strcmp(split, "all") == 0 || strcmp(split, s) == 0; }

/* The mask of image stem in mask_dir: <stem><suffix>.<ext> with the layout's
 * own suffix first ("_mask" for MVTec, "" for same-name masks), then the
 * other; an error naming the image when there is none. */
static int find_mask(const char *image, const char *mask_dir, const char *stem, const char *suffix, char **out)
{
    static const char *exts[] = {".png", ".bmp", ".jpg", ".tif"};
    const char *suf[2] = {suffix, suffix[0] ? "" : "_mask"};
    *out = NULL;
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < sizeof exts / sizeof *exts; k++) {
            char *m = glad_strfmt("%s/%s%s%s", mask_dir, stem, suf[s], exts[k]);
            if (!m) return nomem();
            if (is_file(m)) { *out = m; return 0; }
            free(m);
        }
    return glad_fail(GLAD_EIO, "%s: anomalous image without a mask (no %s/%s%s.png or %s%s.png, nor .bmp, .jpg, .tif)",
                     image, mask_dir, stem, suf[0], stem, suf[1]);
}

/* Add every image of dir as (cls, split, defect, label); with mask_dir every
 * image needs its mask there (find_mask, suffix first). */
static int add_folder(glad_items *it, const char *dir, const char *cls, const char *split, const char *defect, int label,
                      const char *mask_dir, const char *mask_suffix)
{
    char **names;
    int n, rc = list_dir(dir, 0, &names, &n);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = glad_strfmt("%s/%s", dir, names[i]), *stem = stem_of(names[i]), *mask = NULL;
        if (!path || !stem) rc = nomem();
        else if (mask_dir) rc = find_mask(path, mask_dir, stem, mask_suffix, &mask);
        if (rc == 0) rc = push(it, path, mask, cls, split, defect, label, stem);
        free(path); free(stem); free(mask);
    }
    free_list(names, n);
    return rc;
}

/* The classes to walk: cls alone, or every sub-directory of root. */
static int class_list(const char *root, const char *cls, char ***classes, int *nc)
{
    if (!cls) return list_dir(root, 1, classes, nc);
    *nc = 0;
    if (!(*classes = malloc(sizeof(char *))) || !((*classes)[0] = strdup(cls))) { free(*classes); *classes = NULL; return nomem(); }
    *nc = 1;
    return 0;
}

/* One MVTec class folder: train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.* */
static int mvtec_class(glad_items *it, const char *cdir, const char *cls, const char *split)
{
    char *train = glad_strfmt("%s/train/good", cdir), *test = glad_strfmt("%s/test", cdir);
    int rc = 0;
    if (!train || !test) rc = nomem();
    if (rc == 0 && want(split, "train") && is_dir(train)) rc = add_folder(it, train, cls, "train", "good", 0, NULL, NULL);
    if (rc == 0 && want(split, "test") && is_dir(test)) {
        char **defs;
        int nd;
        rc = list_dir(test, 1, &defs, &nd);
        for (int d = 0; rc == 0 && d < nd; d++) {
            char *ddir = glad_strfmt("%s/%s", test, defs[d]), *gdir = glad_strfmt("%s/ground_truth/%s", cdir, defs[d]);
            int good = strcmp(defs[d], "good") == 0;
            if (!ddir || !gdir) rc = nomem();
            else rc = add_folder(it, ddir, cls, "test", defs[d], !good, good ? NULL : gdir, "_mask");
            free(ddir); free(gdir);
        }
        free_list(defs, nd);
    }
    free(train);
    free(test);
    return rc;
}

/* MVTec/MPDD: <root>/<class>/{train/good, test/<defect>, ground_truth/<defect>}, or ROOT one class folder */
int glad_dataset_mvtec(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(need_dir(root));
    char *tg = glad_strfmt("%s/train/good", root), *te = glad_strfmt("%s/test", root);
    int single = tg && te && (is_dir(tg) || is_dir(te));
    free(tg);
    free(te);
    if (single) {
        char *copy = strdup(root);
        if (!copy) return nomem();
        size_t L = strlen(copy);
        while (L > 1 && copy[L - 1] == '/') copy[--L] = 0;
        const char *base = strrchr(copy, '/');
        int rc = mvtec_class(it, root, cls ? cls : (base ? base + 1 : copy), split);
        free(copy);
        return rc;
    }
    char **classes = NULL;
    int nc = 0, found = 0, rc = class_list(root, cls, &classes, &nc);
    for (int c = 0; rc == 0 && c < nc; c++) {
        char *cdir = glad_strfmt("%s/%s", root, classes[c]);
        char *train = glad_strfmt("%s/train/good", cdir), *test = glad_strfmt("%s/test", cdir);
        if (!cdir || !train || !test) rc = nomem();
        else if (!is_dir(train) && !is_dir(test)) {
            if (cls) rc = glad_fail(GLAD_EIO, "%s: not a class folder (no train/good or test)", cdir);
        } else {
            found++;
            rc = mvtec_class(it, cdir, classes[c], split);
        }
        free(cdir); free(train); free(test);
    }
    free_list(classes, nc);
    if (rc == 0 && !found) rc = glad_fail(GLAD_ENOTFOUND, "%s: no class folders with train/good or test", root);
    return rc;
}

/* BTAD: <class>/train/ok, test/{ok,ko}, ground_truth/ko/<stem>.png|bmp */
int glad_dataset_btad(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(need_dir(root));
    char **classes = NULL;
    int nc = 0, found = 0, rc = class_list(root, cls, &classes, &nc);
    for (int c = 0; rc == 0 && c < nc; c++) {
        char *tr = glad_strfmt("%s/%s/train/ok", root, classes[c]), *ok = glad_strfmt("%s/%s/test/ok", root, classes[c]),
             *ko = glad_strfmt("%s/%s/test/ko", root, classes[c]), *gt = glad_strfmt("%s/%s/ground_truth/ko", root, classes[c]);
        if (!tr || !ok || !ko || !gt) rc = nomem();
        else if (is_dir(tr) || is_dir(ok)) {
            found++;
            if (want(split, "train") && is_dir(tr)) rc = add_folder(it, tr, classes[c], "train", "good", 0, NULL, NULL);
            if (rc == 0 && want(split, "test") && is_dir(ok)) rc = add_folder(it, ok, classes[c], "test", "good", 0, NULL, NULL);
            if (rc == 0 && want(split, "test") && is_dir(ko)) rc = add_folder(it, ko, classes[c], "test", "ko", 1, gt, "");
        } else if (cls) rc = glad_fail(GLAD_EIO, "%s/%s: not a BTAD class folder", root, classes[c]);
        free(tr); free(ok); free(ko); free(gt);
    }
    free_list(classes, nc);
    if (rc == 0 && !found) rc = glad_fail(GLAD_ENOTFOUND, "%s: no BTAD class folders", root);
    return rc;
}

/* Read a whole text file (at most 64 MiB). */
static int slurp(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    char *s = NULL;
    if (fstat(fileno(f), &st) != 0) rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    else if (st.st_size > (64L << 20)) rc = glad_fail(GLAD_ERANGE, "%s: %lld bytes, over the 64 MiB limit of a list", path, (long long)st.st_size);
    else if (!(s = malloc((size_t)st.st_size + 1))) rc = nomem();
    else {
        size_t k = fread(s, 1, (size_t)st.st_size, f);
        if (ferror(f)) { rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno)); free(s); s = NULL; }
        else s[k] = 0;
    }
    fclose(f);
    *out = s;
    return rc;
}

/* VisA: split_csv/1cls.csv with columns object,split,label,image,mask (paths relative to root) */
int glad_dataset_visa(glad_items *it, const char *root, const char *cls, const char *split)
{
    GLAD_TRY(need_dir(root));
    char *csv_path = glad_strfmt("%s/split_csv/1cls.csv", root), *text = NULL;
    if (!csv_path) return nomem();
    int rc = slurp(csv_path, &text), n0 = it->n;
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
        if (k < 4) { rc = glad_fail(GLAD_EFORMAT, "%s:%d: expected object,split,label,image,mask", csv_path, line); break; }
        if (cls && strcmp(f[0], cls) != 0) continue;
        const char *sp = strcmp(f[1], "train") == 0 ? "train" : "test";
        if (!want(split, sp)) continue;
        int label = strcmp(f[2], "anomaly") == 0 || strcmp(f[2], "1") == 0;
        char *img = glad_strfmt("%s/%s", root, f[3]), *mask = (label && f[4] && *f[4]) ? glad_strfmt("%s/%s", root, f[4]) : NULL;
        const char *base = strrchr(f[3], '/');
        char *stem = stem_of(base ? base + 1 : f[3]);
        if (!img || !stem || (label && f[4] && *f[4] && !mask)) rc = nomem();
        else if (!is_file(img)) rc = glad_fail(GLAD_EIO, "%s:%d: %s: %s", csv_path, line, img, not_file(img));
        else if (label && !mask) rc = glad_fail(GLAD_EFORMAT, "%s:%d: %s: anomalous image without a mask", csv_path, line, img);
        else if (label && !is_file(mask)) rc = glad_fail(GLAD_EIO, "%s:%d: %s: its mask %s: %s", csv_path, line, img, mask, not_file(mask));
        else rc = push(it, img, mask, f[0], sp, label ? "bad" : "good", label, stem);
        free(img); free(mask); free(stem);
    }
    if (rc == 0 && it->n == n0) rc = glad_fail(GLAD_ENOTFOUND, "%s: no records%s%s", csv_path, cls ? " for class " : "", cls ? cls : "");
    free(text);
    free(csv_path);
    return rc;
}

/* MTD with a split list */
int glad_dataset_mtd(glad_items *it, const char *root, const char *list_file, const char *cls, const char *split)
{
    GLAD_TRY(need_dir(root));
    char *text = NULL;
    int rc = 0, nl = 0;
    char **lpath = NULL, **lsplit = NULL;
    if (list_file) {
        GLAD_TRY(slurp(list_file, &text));
        size_t cap = 1;
        for (char *c = text; *c; c++) cap += *c == '\n';
        lpath = calloc(cap, sizeof(char *));
        lsplit = calloc(cap, sizeof(char *));
        if (!lpath || !lsplit) rc = nomem();
        char *save = NULL;
        int line = 0;
        for (char *ln = rc ? NULL : strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            line++;
            size_t L = strlen(ln);
            if (L && ln[L - 1] == '\r') ln[L - 1] = 0;
            if (!*ln || ln[0] == '#') continue;
            char *sp = strchr(ln, ' ');
            if (!sp || (strncmp(ln, "train ", 6) && strncmp(ln, "test ", 5))) {
                rc = glad_fail(GLAD_EFORMAT, "%s:%d: expected 'train|test <relative path>'", list_file, line);
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
    if (rc == 0) rc = list_dir(root, 1, &types, &nt);
    const char *klass = cls ? cls : "mtd";
    int found = 0;
    for (int t = 0; rc == 0 && t < nt; t++) {
        if (strncmp(types[t], "MT_", 3) != 0) continue;
        found++;
        char *dir = glad_strfmt("%s/%s/Imgs", root, types[t]);
        char **names = NULL;
        int nn = 0;
        if (!dir) { rc = nomem(); break; }
        rc = list_dir(dir, 0, &names, &nn);
        int normal = strcmp(types[t], "MT_Free") == 0;
        char defect[64];
        snprintf(defect, sizeof defect, "%s", normal ? "good" : types[t] + 3);
        for (char *c = defect; *c; c++) if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        for (int i = 0; rc == 0 && i < nn; i++) {
            const char *dot = strrchr(names[i], '.');
            if (!dot || strcasecmp(dot, ".jpg")) continue;   /* masks are the .png files */
            char *rel = glad_strfmt("%s/Imgs/%s", types[t], names[i]), *stem = stem_of(names[i]), *img = NULL, *mask = NULL;
            if (rel && stem) {
                img = glad_strfmt("%s/%s", root, rel);
                mask = glad_strfmt("%s/%s/Imgs/%s.png", root, types[t], stem);
            }
            if (!img || !mask) rc = nomem();
            else {
                const char *sp = NULL;
                for (int k = 0; k < nl && !sp; k++) if (strcmp(lpath[k], rel) == 0) sp = lsplit[k];
                if (!sp && list_file && strcmp(split, "all") != 0)
                    rc = glad_fail(GLAD_ENOTFOUND, "%s: not in the split list %s (use --split all to take it as test)", img, list_file);
                else if (!sp) sp = "test";
                if (rc == 0 && want(split, sp)) {
                    if (!normal && !is_file(mask)) rc = glad_fail(GLAD_EIO, "%s: anomalous image without a mask (no %s)", img, mask);
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
    if (rc == 0 && !found) rc = glad_fail(GLAD_ENOTFOUND, "%s: no MT_* folders", root);
    return rc;
}

int glad_dataset_generic(glad_items *it, const char *normal_dir, const char *anomalous_dir, const char *masks_dir,
                         const char *cls, const char *split)
{
    if (masks_dir) GLAD_TRY(need_dir(masks_dir));
    int rc = 0;
    const char *sp = strcmp(split, "all") == 0 ? "test" : split;
    if (normal_dir) rc = add_folder(it, normal_dir, cls, sp, "good", 0, NULL, NULL);
    if (rc == 0 && anomalous_dir) rc = add_folder(it, anomalous_dir, cls, sp, "anomalous", 1, masks_dir, "");
    return rc;
}

int glad_dataset_add_path(glad_items *it, const char *path, const char *cls, const char *split, int label)
{
    if (!is_file(path)) return glad_fail(GLAD_EIO, "%s: %s", path, not_file(path));
    const char *base = strrchr(path, '/');
    /* ids must be unique: use the path without extension, '/' kept */
    char *p = strdup(path), *dot;
    if (!p) return nomem();
    if ((dot = strrchr(p, '.')) && (!base || dot > p + (base - path))) *dot = 0;
    while (p[0] == '.' && p[1] == '/') memmove(p, p + 2, strlen(p + 2) + 1);
    int rc = push(it, path, NULL, cls, strcmp(split, "all") == 0 ? "test" : split, label ? "anomalous" : "good", label, p[0] == '/' ? p + 1 : p);
    free(p);
    return rc;
}

int glad_dataset_list(glad_items *it, const glad_dataset_spec *s)
{
    switch (s->format) {
    case GLAD_DATASET_MVTEC:
    case GLAD_DATASET_MPDD: return glad_dataset_mvtec(it, s->root, s->cls, s->split);
    case GLAD_DATASET_VISA: return glad_dataset_visa(it, s->root, s->cls, s->split);
    case GLAD_DATASET_BTAD: return glad_dataset_btad(it, s->root, s->cls, s->split);
    case GLAD_DATASET_MTD: return glad_dataset_mtd(it, s->root, s->split_file, s->cls, s->split);
    case GLAD_DATASET_GENERIC:
        return glad_dataset_generic(it, s->normal_dir, s->anomalous_dir, s->masks_dir, s->cls ? s->cls : "generic", s->split);
    }
    return glad_fail(GLAD_EINVAL, "unknown dataset format %d", (int)s->format);
}
