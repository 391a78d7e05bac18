/* outfile.c - complete-or-untouched output files: a temporary beside the
 * target renamed over it on commit, or a written-through special file.
 * Uncommitted temporaries are listed in a fixed table so a signal handler
 * can remove them with nothing but unlink (async-signal-safe). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/outfile.h"

struct glad_outfile {
    FILE *f;
    char *path;     /* as given, for messages */
    char *target;   /* rename destination (symlinks resolved); NULL when written through */
    char *temp;     /* the temporary; NULL when written through */
    int is_stdout, flags;
    int err;        /* errno of the first failed write, 0 while all is well */
    int slot;       /* index in the temporaries table, or -1 */
};

/* ---- the table of live temporaries: 0 free, 1 being filled, 2 live ---- */
enum { NSLOTS = 16 };
static char slot_path[NSLOTS][PATH_MAX];
static atomic_int slot_state[NSLOTS];

static int slot_claim(const char *path)
{
    if (strlen(path) >= PATH_MAX) return -1;
    for (int i = 0; i < NSLOTS; i++) {
        int fr = 0;
        if (atomic_compare_exchange_strong(&slot_state[i], &fr, 1)) {
            strcpy(slot_path[i], path);
            atomic_store(&slot_state[i], 2);
            return i;
        }
    }
    return -1;   /* more than NSLOTS open at once: still works, not removed on a signal */
}

static void slot_release(int i)
{
    if (i >= 0) atomic_store(&slot_state[i], 0);
}

void glad_outfile_remove_temps(void)
{
    for (int i = 0; i < NSLOTS; i++)
        if (atomic_load(&slot_state[i]) == 2) unlink(slot_path[i]);
}

/* ---- opening ---- */

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Follow the symlinks of path by hand. *target = the final name (malloc'd);
 * *through = 1 when the chain passes a /proc or /dev/fd "magic" link (those
 * name an open descriptor, e.g. /dev/stdout, and must be written through). */
static int resolve(const char *path, char **target, int *through)
{
    char cur[PATH_MAX], link[PATH_MAX];
    *through = 0;
    if (strlen(path) >= sizeof cur) return ENAMETOOLONG;
    strcpy(cur, path);
    for (int hop = 0; hop < 40; hop++) {
        struct stat st;
        if (starts(cur, "/proc/") || starts(cur, "/dev/fd/") || starts(cur, "/dev/std")) { *through = 1; break; }
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return errno;
        link[n] = 0;
        if (link[0] == '/') strcpy(cur, link);
        else {   /* relative to the link's directory */
            char *slash = strrchr(cur, '/');
            size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
            if (dl + (size_t)n >= sizeof cur) return ENAMETOOLONG;
            memcpy(cur + dl, link, (size_t)n + 1);
        }
    }
    *target = strdup(cur);
    return *target ? 0 : ENOMEM;
}

static void of_free(glad_outfile *of)
{
    free(of->path);
    free(of->target);
    free(of->temp);
    free(of);
}

static int open_fail(glad_outfile *of, int e)
{
    int rc = e == ENOMEM ? glad_fail(GLAD_ENOMEM, "out of memory")
                         : glad_fail(GLAD_EIO, "%s: %s", of->path ? of->path : "?", strerror(e));
    of_free(of);
    return rc;
}

/* A temporary beside the target, with the target's permissions when it exists. */
static int open_temp(glad_outfile *of, const struct stat *old)
{
    size_t n = strlen(of->target) + 48;
    if (!(of->temp = malloc(n))) return ENOMEM;
    static atomic_uint counter;
    int fd = -1;
    for (int k = 0; k < 100 && fd < 0; k++) {
        unsigned c = atomic_fetch_add(&counter, 1);
        if (c == 0) snprintf(of->temp, n, "%s.tmp.%ld", of->target, (long)getpid());
        else snprintf(of->temp, n, "%s.tmp.%ld.%u", of->target, (long)getpid(), c);
        fd = open(of->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) { int e = errno; free(of->temp); of->temp = NULL; return e; }
    if (old) (void)fchmod(fd, old->st_mode & 07777);
    of->slot = slot_claim(of->temp);
    if (!(of->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(of->temp);
        slot_release(of->slot);
        return e;
    }
    return 0;
}

int glad_outfile_open(glad_outfile **out, const char *path, int flags)
{
    *out = NULL;
    glad_outfile *of = calloc(1, sizeof *of);
    if (!of) return glad_fail(GLAD_ENOMEM, "out of memory");
    of->slot = -1;
    of->flags = flags;
    int std = !path || strcmp(path, "-") == 0;
    if (!(of->path = strdup(std ? "<stdout>" : path))) return open_fail(of, ENOMEM);
    if (std) {
        of->f = stdout;
        of->is_stdout = 1;
        *out = of;
        return 0;
    }
    if (!*path) return open_fail(of, ENOENT);
    int through, e = resolve(path, &of->target, &through);
    if (e) return open_fail(of, e);
    struct stat st;
    int exists = stat(of->target, &st) == 0;
    if (!exists && errno != ENOENT) return open_fail(of, errno);
    if (exists && S_ISDIR(st.st_mode)) return open_fail(of, EISDIR);
    int dangling = !exists && strcmp(of->target, path) != 0;   /* a symlink to nothing: fopen creates its target */
    if (through || dangling || (exists && !S_ISREG(st.st_mode))) {
        free(of->target);
        of->target = NULL;
        if (!(of->f = fopen(path, "wb"))) return open_fail(of, errno);
    } else if ((e = open_temp(of, exists ? &st : NULL)) != 0)
        return open_fail(of, e);
    *out = of;
    return 0;
}

int glad_outfile_write(glad_outfile *of, const void *p, size_t n)
{
    if (of->err) return GLAD_EIO;
    errno = 0;
    if (n && fwrite(p, 1, n, of->f) != n) {
        of->err = errno ? errno : EIO;
        return glad_fail(GLAD_EIO, "%s: %s", of->path, strerror(of->err));
    }
    return 0;
}

const char *glad_outfile_path(const glad_outfile *of) { return of->path; }

FILE *glad_outfile_file(glad_outfile *of) { return of->f; }

int glad_outfile_commit(glad_outfile *of)
{
    if (!of) return 0;
    int e = of->err;
    errno = 0;
    if (fflush(of->f) != 0 && !e) e = errno ? errno : EIO;
    if (ferror(of->f) && !e) e = EIO;
    if (!of->is_stdout) {
        if (!e && of->temp && (of->flags & GLAD_OUTFILE_FSYNC) && fsync(fileno(of->f)) != 0) e = errno;
        if (fclose(of->f) != 0 && !e) e = errno;
        if (!e && of->temp && rename(of->temp, of->target) != 0) e = errno;
        if (e && of->temp) unlink(of->temp);
    }
    slot_release(of->slot);
    int rc = e ? glad_fail(GLAD_EIO, "%s: %s", of->path, strerror(e)) : 0;
    of_free(of);
    return rc;
}

void glad_outfile_abort(glad_outfile *of)
{
    if (!of) return;
    if (!of->is_stdout) {
        fclose(of->f);
        if (of->temp) unlink(of->temp);
    }
    slot_release(of->slot);
    of_free(of);
}
