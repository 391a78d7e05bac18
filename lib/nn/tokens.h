/* tokens.h - inference kernels for transformer blocks that keep their tokens
 * channel-major, as planes (C, T): channel c of token t at c T + t, i.e. the
 * NCHW layout of one image with T = H W (Stable Diffusion's
 * Transformer2DModel, models/sdunet.c). Working in this layout, the 1x1
 * projections and linear layers are plain (C_out, C_in) x (C_in, T) GEMMs and
 * the self-attention is glad_attention_forward's; no transposes. What the
 * engine lacked: LayerNorm over the channels of each token, the GEGLU gate,
 * and attention whose keys and values come from a separate context of L
 * tokens (cross-attention). Forward only; no state. */
#ifndef GLAD_NN_TOKENS_H
#define GLAD_NN_TOKENS_H

#include <stddef.h>

/* out (C,T) = LayerNorm over the C channels of each token of x (C,T), affine
 * gamma, beta (C): (x - mean) / sqrt(var + eps) gamma + beta, biased
 * variance, statistics in double. out may not alias x. */
void glad_layernorm_cols_forward(float *out, const float *x, const float *gamma, const float *beta, int C, int T, float eps);

/* GEGLU gate (diffusers GEGLU): proj (2 NI, T) = [a ; g] (rows), out (NI, T) =
 * a GELU(g) with the exact erf GELU. out may be proj (its first NI rows). */
void glad_geglu_forward(float *out, const float *proj, int NI, int T);

/* multi-head attention with queries q (C, Tq) and keys, values k, v (C, Tk)
 * of their own length (a context for cross-attention, or q's own tokens):
 * heads are contiguous blocks of hd = C / heads channels; per head
 *   out_h (hd, Tq) = V_h softmax_keys(hd^-1/2 K_h^T Q_h)
 * softmax over the Tk keys of each query, its sums in double. ws holds
 * glad_xattn_workspace(Tk) floats per thread (omp_get_max_threads() of
 * them); results do not depend on the thread count. */
size_t glad_xattn_workspace(int Tk);
void glad_xattn_forward(float *out, const float *q, const float *k, const float *v, int C, int Tq, int Tk, int heads,
                        float *ws);

#endif
