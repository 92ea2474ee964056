/* Fused AMAD mixture-KL on the CPU: the value and dKL/ds of amad.losses.fused.MixtureKL in one call.
 *
 * Per group g (a sample, or one query row for the token-level loss), with teacher rows t (Ht, n), student rows
 * s (Hs, n), w_ij = cos(t_i, s_j), a = softmax_j(w / tau), m = a s, R = t / (m + LOG_EPS):
 *     kl[g]      = sum_ie t_ie log(R_ie + TINY)
 *     grad[g, j] = c_j s_j - sum_i a_ij R_i + sum_i (grad_w_ij / (|t_i| |s_j|)) t_i      (unit upstream gradient)
 * which is exactly what the PyTorch path in fused.py computes. Each group is done while its rows sit in the
 * core's cache (the PyTorch path makes about twenty passes over (G, Ht, n) tensors), groups run in parallel on
 * the OpenMP threads torch already uses, and the logarithm is an inlined polynomial the compiler vectorises.
 *
 * Built at first use by amad/losses/cpu_kernel.py (cc -O3 -march=native -fopenmp -fno-trapping-math -shared; the
 * last flag lets gcc vectorise the selects in log_any). float32, contiguous.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define LOG_EPS 1e-12f  /* amad.losses.masking.LOG_EPS */
#define NORM_EPS 1e-12  /* amad.losses.masking.NORM_EPS */
#define TINY 1e-30f     /* amad.losses.masking.TINY */

typedef union {
    float f;
    uint32_t i;
} word; /* reads a float's bits and back */

static inline uint32_t bits_of(float x) { return ((word){.f = x}).i; }

static inline float float_of(uint32_t i) { return ((word){.i = i}).f; }

/* logf for any float (the Cephes logf scheme, relative error about 1e-7), branch-free so that loops over it
 * vectorise. Zero gives -inf, negatives NaN, and NaN and +inf pass through, as logf does; the loss needs only
 * positive normal inputs, but a diverged student's NaN must still reach the loss value. */
static inline float log_any(float x) {
    const uint32_t bits = bits_of(x);
    const int subnormal = bits < 0x00800000u;
    const uint32_t b = bits_of(subnormal ? x * 8388608.0f : x); /* 2^23 lifts a subnormal into the normal range */
    int32_t e = (int32_t)((b >> 23) & 0xff) - 126 - (subnormal ? 23 : 0);
    float f = float_of((b & 0x007fffffu) | 0x3f000000u); /* x = 2^e * f, f in [0.5, 1) */
    const int below = f < 0.707106781186547524f;
    e -= below;
    f = below ? f + f - 1.0f : f - 1.0f; /* x = 2^e * (1 + f), f in [sqrt(1/2) - 1, sqrt(2) - 1) */
    const float z = f * f;
    float y = 7.0376836292E-2f;
    y = y * f - 1.1514610310E-1f;
    y = y * f + 1.1676998740E-1f;
    y = y * f - 1.2420140846E-1f;
    y = y * f + 1.4249322787E-1f;
    y = y * f - 1.6668057665E-1f;
    y = y * f + 2.0000714765E-1f;
    y = y * f - 2.4999993993E-1f;
    y = y * f + 3.3333331174E-1f;
    y = y * f * z;
    const float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    float out = f + y + 0.693359375f * fe;
    /* special cases as selects; vectorised under -fno-trapping-math */
    out = bits >= 0x7f800000u ? x : out;              /* +inf, NaN (and negatives, fixed next) */
    out = bits > 0x80000000u ? NAN : out;             /* negatives */
    out = (bits & 0x7fffffffu) == 0 ? -INFINITY : out; /* +-0 */
    return out;
}

/* Sums over a whole map row (up to 577 x 577 entries at paper scale) add float partial sums of BLOCK entries in
 * double: the KL's terms cancel, and float lanes summing 20,000 terms each lost 1e-3 of the value at that size. */
#define BLOCK 512

static double dot(const float *x, const float *y, int64_t n) {
    double acc = 0.0;
    for (int64_t e0 = 0; e0 < n; e0 += BLOCK) {
        const int64_t e1 = e0 + BLOCK < n ? e0 + BLOCK : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int64_t e = e0; e < e1; e++) part += x[e] * y[e];
        acc += part;
    }
    return acc;
}

/* One group. tg (Ht, n), sg (Hs, n) with invalid entries already zero; R (Ht, n) and small (8 Ht Hs + 2 Ht + 3 Hs
 * doubles) are scratch; out (Hs, n) receives dKL/ds when non-NULL. Returns the group's KL. */
static float group(const float *tg, const float *sg, int64_t Ht, int64_t Hs, int64_t n, double tau, int detach,
                   float *R, double *small, float *out) {
    double *tn = small, *sn = tn + Ht, *live = sn + Hs, *w = live + Hs, *a = w + Ht * Hs, *ga = a + Ht * Hs,
           *gd = ga + Ht * Hs, *coef = gd + Ht * Hs;
    for (int64_t i = 0; i < Ht; i++) tn[i] = fmax(sqrt(dot(tg + i * n, tg + i * n, n)), NORM_EPS);
    for (int64_t j = 0; j < Hs; j++) {
        double raw = sqrt(dot(sg + j * n, sg + j * n, n));
        live[j] = raw >= NORM_EPS; /* the clamped norm has no gradient */
        sn[j] = fmax(raw, NORM_EPS);
    }
    for (int64_t i = 0; i < Ht; i++) { /* w, a: (Ht, Hs) */
        double top = -INFINITY, z = 0.0;
        for (int64_t j = 0; j < Hs; j++) {
            w[i * Hs + j] = dot(tg + i * n, sg + j * n, n) / (tn[i] * sn[j]);
            top = fmax(top, w[i * Hs + j] / tau);
        }
        for (int64_t j = 0; j < Hs; j++) z += (a[i * Hs + j] = exp(w[i * Hs + j] / tau - top));
        for (int64_t j = 0; j < Hs; j++) a[i * Hs + j] /= z;
    }
    double kl = 0.0;
    for (int64_t i = 0; i < Ht; i++) {
        const float *ti = tg + i * n;
        float *Ri = R + i * n; /* m_i + eps, then R_i = t_i / (m_i + eps): (n,) */
#pragma omp simd
        for (int64_t e = 0; e < n; e++) Ri[e] = LOG_EPS;
        for (int64_t j = 0; j < Hs; j++) {
            const float aij = (float)a[i * Hs + j], *sj = sg + j * n;
#pragma omp simd
            for (int64_t e = 0; e < n; e++) Ri[e] += aij * sj[e];
        }
        for (int64_t e0 = 0; e0 < n; e0 += BLOCK) {
            const int64_t e1 = e0 + BLOCK < n ? e0 + BLOCK : n;
            float part = 0.0f;
#pragma omp simd reduction(+ : part)
            for (int64_t e = e0; e < e1; e++) {
                const float r = ti[e] / Ri[e]; /* 0 where t = 0 */
                Ri[e] = r;
                part += ti[e] * log_any(r + TINY);
            }
            kl += part;
        }
        if (out != NULL && !detach)
            for (int64_t j = 0; j < Hs; j++) ga[i * Hs + j] = -dot(Ri, sg + j * n, n); /* dKL/da = -R s^T */
    }
    if (out == NULL) return (float)kl;
    for (int64_t j = 0; j < Hs; j++) coef[j] = 0.0;
    for (int64_t i = 0; i < Ht; i++) { /* softmax and cosine backward on (Ht, Hs) */
        double back = 0.0;
        for (int64_t j = 0; j < Hs; j++) back += detach ? 0.0 : ga[i * Hs + j] * a[i * Hs + j];
        for (int64_t j = 0; j < Hs; j++) {
            const double gw = detach ? 0.0 : a[i * Hs + j] * (ga[i * Hs + j] - back) / tau;
            gd[i * Hs + j] = gw / (tn[i] * sn[j]);
            coef[j] -= gw * w[i * Hs + j];
        }
    }
    for (int64_t j = 0; j < Hs; j++) {
        float *oj = out + j * n;
        const float *sj = sg + j * n, cj = (float)(live[j] * coef[j] / (sn[j] * sn[j]));
#pragma omp simd
        for (int64_t e = 0; e < n; e++) oj[e] = cj * sj[e];
        for (int64_t i = 0; i < Ht; i++) {
            const float na = (float)-a[i * Hs + j], d = (float)gd[i * Hs + j], *Ri = R + i * n, *ti = tg + i * n;
#pragma omp simd
            for (int64_t e = 0; e < n; e++) oj[e] += na * Ri[e] + d * ti[e];
        }
    }
    return (float)kl;
}

/* t (G, Ht, n), s (G, Hs, n), valid (G, n) bytes or NULL -> kl (G,), grad (G, Hs, n) or NULL.
 * Invalid student entries are read as 0 (even NaN) and get a zero gradient. Returns 0, or 1 when out of memory. */
int amad_mixture_kl_f32(const float *t, const float *s, const uint8_t *valid, int64_t G, int64_t Ht, int64_t Hs,
                        int64_t n, double tau, int detach, float *kl, float *grad, int threads) {
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *R = malloc(sizeof(float) * Ht * n);
        float *S = valid != NULL ? malloc(sizeof(float) * Hs * n) : NULL;
        double *small = malloc(sizeof(double) * (8 * Ht * Hs + 2 * Ht + 3 * Hs));
        failed = R == NULL || small == NULL || (valid != NULL && S == NULL);
#pragma omp for schedule(static)
        for (int64_t g = 0; g < G; g++) {
            if (failed) continue;
            const float *sg = s + g * Hs * n;
            if (valid != NULL) { /* masked copy of the student rows: (Hs, n) */
                const uint8_t *v = valid + g * n;
                for (int64_t j = 0; j < Hs; j++) {
#pragma omp simd
                    for (int64_t e = 0; e < n; e++) S[j * n + e] = v[e] ? sg[j * n + e] : 0.0f;
                }
                sg = S;
            }
            float *out = grad != NULL ? grad + g * Hs * n : NULL;
            kl[g] = group(t + g * Ht * n, sg, Ht, Hs, n, tau, detach, R, small, out);
        }
        free(R);
        free(S);
        free(small);
    }
    return failed;
}
