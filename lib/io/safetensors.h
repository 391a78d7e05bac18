/* safetensors.h - read and write safetensors files: 8-byte little-endian
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
 * "__metadata__": {str: str}}, then raw little-endian data. Used for the
 * fixtures, model files (UNet, ViT, ResNet weights) and checkpoints.
 * Every offset is bounds-checked against the file size. */
#ifndef GLAD_SAFETENSORS_H
#define GLAD_SAFETENSORS_H

#include "core/tensor.h"

typedef struct {
    char *name;
    glad_dtype dtype;          /* F16/F32/F64/I64/I32/U8/I8/BOOL... ("BF16" unsupported) */
    int ndim;
    int64_t shape[GLAD_MAX_DIMS];
    uint64_t begin, end;       /* byte offsets into the data section */
} glad_st_entry;

typedef struct glad_st glad_st;

/* Open and validate. A regular file is mapped read-only (its pages are the
 * page cache's: shared, loaded on use, reclaimable; the data pointers keep
 * the file's alignment, the base being page-aligned); any other file, or one
 * mmap refuses, is read whole into memory. The file must not be truncated
 * while open (a mapped page past the new end would fault). A missing or
 * unreadable file: GLAD_EIO with the detail "<path>: No such file or
 * directory" (or "Is a directory", ...). */
int glad_st_open(glad_st **st, const char *path);
/* The same from size bytes in memory (copied; name only for messages). */
int glad_st_open_mem(glad_st **st, const void *data, size_t size, const char *name);
/* 1 when st is a mapping of its file, 0 when its bytes were read or copied. */
int glad_st_is_mapped(const glad_st *st);
void glad_st_close(glad_st *st);
int glad_st_count(const glad_st *st);
const glad_st_entry *glad_st_entry_at(const glad_st *st, int i);
const glad_st_entry *glad_st_find(const glad_st *st, const char *name);
/* Copy a tensor out keeping its dtype / converted to f32. GLAD_ENOTFOUND if absent. */
int glad_st_get(const glad_st *st, const char *name, glad_tensor *out);
int glad_st_get_f32(const glad_st *st, const char *name, glad_tensor *out);
/* Pointer to the raw bytes of an entry (valid until close). */
const void *glad_st_data(const glad_st *st, const glad_st_entry *e);
/* __metadata__ string value, or NULL. */
const char *glad_st_meta(const glad_st *st, const char *key);
int glad_st_meta_count(const glad_st *st);
const char *glad_st_meta_key(const glad_st *st, int i);

/* Write as a glad_outfile (outfile.h): a regular file is replaced, fsync'd,
 * only when every byte was written; a device or FIFO is written through.
 * names[i] -> tensors[i]; meta_keys/meta_vals may be NULL when nmeta == 0.
 * GLAD_EIO with a detail "<path>: <reason>" on failure; GLAD_EINVAL, nothing
 * written, when a name or metadata key is given twice (no reader would take
 * the file: glad_json_parse refuses repeated keys). */
int glad_st_save(const char *path, int n, const char *const *names, const glad_tensor *const *tensors,
                 int nmeta, const char *const *meta_keys, const char *const *meta_vals);

#endif
