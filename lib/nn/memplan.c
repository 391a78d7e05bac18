/* memplan.c - an offset planner for tensors with known lifetimes: best-fit
 * allocation of float ranges inside one virtual buffer, with coalescing
 * frees. A network replays its (deterministic) sequence of allocations and
 * frees once, then allocates a single buffer of glad_memplan.top floats and
 * uses the recorded offsets. It is not a heap: it hands out offsets only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/glad.h"
#include "nn/nn.h"

#define ALIGN 16   /* floats: 64-byte aligned offsets */

void glad_memplan_init(glad_memplan *m) { memset(m, 0, sizeof *m); }
void glad_memplan_release(glad_memplan *m) { free(m->span); memset(m, 0, sizeof *m); }

static size_t rounded(size_t n) { return n ? (n + ALIGN - 1) / ALIGN * ALIGN : ALIGN; }

int glad_memplan_alloc(glad_memplan *m, size_t n, size_t *off)
{
    n = rounded(n);
    int best = -1;
    for (int i = 0; i < m->nspan; i++)
        if (m->span[i].len >= n && (best < 0 || m->span[i].len < m->span[best].len)) best = i;
    if (best >= 0) {
        *off = m->span[best].off;
        m->span[best].off += n;
        m->span[best].len -= n;
        if (m->span[best].len == 0) { memmove(m->span + best, m->span + best + 1, sizeof *m->span * (size_t)(m->nspan - best - 1)); m->nspan--; }
    } else if (m->nspan && m->span[m->nspan - 1].off + m->span[m->nspan - 1].len == m->top) {
        /* the last free span touches the top: grow it */
        *off = m->span[m->nspan - 1].off;
        m->top = *off + n;
        m->nspan--;
    } else {
        *off = m->top;
        m->top += n;
    }
    m->live += n;
    return 0;
}

/* spans are kept sorted by offset; neighbours merge */
int glad_memplan_free(glad_memplan *m, size_t off, size_t n)
{
    n = rounded(n);
    int i = 0;
    while (i < m->nspan && m->span[i].off < off) i++;
    int left = i > 0 && m->span[i - 1].off + m->span[i - 1].len == off;
    int right = i < m->nspan && off + n == m->span[i].off;
    m->live -= n;
    if (left && right) {
        m->span[i - 1].len += n + m->span[i].len;
        memmove(m->span + i, m->span + i + 1, sizeof *m->span * (size_t)(m->nspan - i - 1));
        m->nspan--;
    } else if (left) m->span[i - 1].len += n;
    else if (right) { m->span[i].off = off; m->span[i].len += n; }
    else {
        glad_memplan_span *ns = glad_grow(m->span, &m->cap, m->nspan, sizeof *ns, 64);
        if (!ns) return -1;
        m->span = ns;
        memmove(m->span + i + 1, m->span + i, sizeof *m->span * (size_t)(m->nspan - i));
        m->span[i].off = off;
        m->span[i].len = n;
        m->nspan++;
    }
    return 0;
}
