/* cpu.h - which SIMD kernels of lib/nn this CPU runs. Private to lib/nn. */
#ifndef GLAD_NN_CPU_H
#define GLAD_NN_CPU_H

/* 1 when the CPU has AVX-512F and GLAD_NO_AVX512 is not in the environment
 * (the tests set it to run the portable kernels a CPU without it takes) */
int glad_nn_avx512(void);

/* 1 when glad_nn_avx512() and the CPU has AVX512_BF16, AVX512BW and
 * AVX512VL, and GLAD_NO_BF16 is not in the environment (bf16.h's kernels) */
int glad_nn_bf16(void);

#endif
