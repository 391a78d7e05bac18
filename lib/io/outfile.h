/* outfile.h - an output file that is either complete or untouched. A regular
 * file (or a path that does not exist yet) is written to a temporary file in
 * the same directory and renamed over the path by glad_outfile_commit, so a
 * failed or interrupted run leaves the previous file as it was. A path that
 * names anything else (a device, a FIFO, /dev/stdout, a symlink to one) is
 * opened and written through, never replaced. Every write is checked.
 * Replacing a regular file needs write access to its directory (for the
 * temporary), as any atomic replacement does.
 * Used by the stream writer (stream.h), glad_st_save (safetensors.h), the
 * PNG writer (image.h) and the report/gallery files of glad-auroc and
 * glad-view; it knows nothing of their formats. */
#ifndef GLAD_OUTFILE_H
#define GLAD_OUTFILE_H

#include <stdio.h>
#include "core/glad.h"

typedef struct glad_outfile glad_outfile;

/* fsync the temporary file before the rename (model files, checkpoints) */
#define GLAD_OUTFILE_FSYNC 1

/* Open path for writing ("-" or NULL = standard output, written through and
 * never closed). Fails with GLAD_EIO and a detail such as
 * "out/x.msgpack: No such file or directory". */
int glad_outfile_open(glad_outfile **of, const char *path, int flags);
/* Write n bytes: 0, or GLAD_EIO (the first failure is kept and reported by
 * commit; later writes fail at once). */
int glad_outfile_write(glad_outfile *of, const void *p, size_t n);
/* Flush, check every write, close, rename the temporary into place; frees of.
 * On failure the temporary is removed, the path left as it was, and GLAD_EIO
 * returned with a detail "<path>: <reason>". */
int glad_outfile_commit(glad_outfile *of);
/* Give up: close and remove the temporary (a written-through output keeps
 * what was written; it is never completed). Frees of; NULL is a no-op. */
void glad_outfile_abort(glad_outfile *of);
/* The stdio stream behind of, for writers that take a FILE* (libpng, the
 * report and gallery writers); commit checks its error flag, so a failed
 * fwrite/fprintf on it fails the commit like a failed glad_outfile_write. */
FILE *glad_outfile_file(glad_outfile *of);
/* The path given to open ("<stdout>" for standard output), for messages. */
const char *glad_outfile_path(const glad_outfile *of);

/* Remove every temporary file of an outfile not yet committed or aborted.
 * Async-signal-safe (only unlink), for signal handlers and atexit. */
void glad_outfile_remove_temps(void);

#endif
