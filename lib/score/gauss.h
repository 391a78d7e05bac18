/* gauss.h - a multivariate Gaussian of whole-image feature statistics: each
 * image is the mean over its positions of one feature layer's map (a C
 * vector); the training normals' vectors give a mean and a Ledoit-Wolf
 * shrunk covariance, and an image scores by its Mahalanobis distance to
 * them (Rippel, Mertens, Merhof, "Modeling the distribution of normal data
 * in pre-trained deep features for anomaly detection", ICPR 2020). It sees
 * what a patch memory bank cannot: a tile whose parts are each plausible
 * but whose whole is not (a broad change of brightness or texture).
 * Not here: the patch bank (bank.h), reading streams, files (bank.c saves
 * the model beside the bank). */
#ifndef GLAD_SCORE_GAUSS_H
#define GLAD_SCORE_GAUSS_H

#include <stdint.h>
#include "core/glad.h"

typedef struct {
    int C;
    double *mean;       /* C */
    double *prec;       /* C x C, the inverse of the shrunk covariance */
    double shrinkage;   /* Ledoit-Wolf's weight of the scaled identity, in [0,1] */
    double scale;       /* median squared distance of the fitting images: 1 is typical */
} glad_gauss;

/* v[c] = mean over the h*w positions of the (C,h,w) map f (GLAD_ENAN when
 * the map holds NaN or infinity). */
int glad_gauss_pool(float *v, const float *f, int C, int h, int w);

/* Fit on n >= 2 row vectors X (n x C): mean, the covariance S = Xc^T Xc / n
 * shrunk to (1 - s) S + s (tr S / C) I with Ledoit and Wolf's s (as
 * sklearn.covariance.LedoitWolf), its inverse by Cholesky, and the scale.
 * GLAD_EINVAL (n < 2, C < 1), GLAD_ERANGE (a covariance that is not
 * positive definite: every vector the same), GLAD_ENAN, GLAD_ENOMEM. */
int glad_gauss_fit(glad_gauss *g, const float *X, int64_t n, int C);

/* *d = (x - mean)^T prec (x - mean) / scale for a C vector x. */
int glad_gauss_score(const glad_gauss *g, const float *x, int C, double *d);

/* Take mean [C], prec [C,C] and scale as loaded (copied): checks the shapes,
 * finiteness, a symmetric prec and scale > 0 (GLAD_EFORMAT otherwise). */
int glad_gauss_set(glad_gauss *g, int C, const double *mean, const double *prec, double scale);

void glad_gauss_free(glad_gauss *g);

#endif
