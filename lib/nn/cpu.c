/* cpu.c - the AVX-512F and AVX512_BF16 checks of cpu.h, evaluated once per process. */
#include <stdlib.h>
#include "nn/cpu.h"

int glad_nn_avx512(void)
{
    static int have = -1;
    if (have < 0) have = __builtin_cpu_supports("avx512f") != 0 && !getenv("GLAD_NO_AVX512");
    return have;
}

int glad_nn_bf16(void)
{
    static int have = -1;
    if (have < 0)
        have = glad_nn_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && !getenv("GLAD_NO_BF16");
    return have;
}
