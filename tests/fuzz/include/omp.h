/* omp.h - stand-in for the OpenMP runtime in the fuzz build (tests/fuzz/):
 * the harnesses are built without -fopenmp, so the pragmas are ignored and
 * these give the one-thread answers. Never used by the normal build. */
#ifndef GLAD_FUZZ_OMP_H
#define GLAD_FUZZ_OMP_H
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
/* wall seconds (lib/models/unet.c's profile) */
#include <time.h>
static inline double omp_get_wtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif
