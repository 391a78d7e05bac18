/* cpu.c - the AVX-512F check of cpu.h, evaluated once per process. */
#include <stdlib.h>
#include "nn/cpu.h"

int glad_nn_avx512(void)
{
    static int have = -1;
    if (have < 0) have = __builtin_cpu_supports("avx512f") != 0 && !getenv("GLAD_NO_AVX512");
    return have;
}
