/* arena.c - bump allocator for activations and gradients: blocks are kept
 * across resets, so after the first training step no memory is allocated. */
#include <stdlib.h>
#include <string.h>
#include "nn/nn.h"

struct glad_arena_block {
    glad_arena_block *next;
    size_t cap, used;   /* bytes */
    float *data;
};

void glad_arena_init(glad_arena *a, size_t block_floats)
{
    memset(a, 0, sizeof *a);
    a->block_floats = block_floats ? block_floats : ((size_t)64 << 20) / sizeof(float);
}

float *glad_arena_alloc(glad_arena *a, size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    glad_arena_block *b = a->cur;
    while (b && b->used + bytes > b->cap) b = b->next;
    if (!b) {
        size_t cap = a->block_floats * sizeof(float);
        if (cap < bytes) cap = bytes;
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        b->data = aligned_alloc(64, cap);
        if (!b->data) { free(b); return NULL; }
        b->cap = cap;
        /* append at the end of the list */
        glad_arena_block **pp = &a->head;
        while (*pp) pp = &(*pp)->next;
        *pp = b;
    }
    a->cur = b;
    float *p = (float *)((char *)b->data + b->used);
    b->used += bytes;
    a->used_bytes += bytes;
    if (a->used_bytes > a->peak_bytes) a->peak_bytes = a->used_bytes;
    return p;
}

float *glad_arena_zalloc(glad_arena *a, size_t n)
{
    float *p = glad_arena_alloc(a, n);
    if (p) memset(p, 0, n * sizeof(float));
    return p;
}

void glad_arena_reset(glad_arena *a)
{
    for (glad_arena_block *b = a->head; b; b = b->next) b->used = 0;
    a->cur = a->head;
    a->used_bytes = 0;
}

void glad_arena_free(glad_arena *a)
{
    glad_arena_block *b = a->head;
    while (b) {
        glad_arena_block *n = b->next;
        free(b->data);
        free(b);
        b = n;
    }
    memset(a, 0, sizeof *a);
}
