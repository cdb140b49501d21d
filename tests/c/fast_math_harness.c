/*
 * Accuracy of the generated activations against libm in double, over the whole float range.
 *
 * Compiled by tests/test_fast_math.py together with "cases.c", which holds for every case a
 * one-feature model exported twice (--math fast as fast_<case>, --math libm as libm_<case>)
 * and the table CASES naming them and the exact (double) function below. For each case it
 * prints one line:
 *
 *   <case> <max ULP fast> <worst x fast> <max ULP libm> <worst x libm> <special failures fast>
 *
 * An error is counted in ULPs of the exact result rounded to float, or in units of FLT_MIN
 * where that result is smaller (underflow). NaN must give NaN, an infinite result the same
 * infinity, f(+-0) a zero of the sign of the exact one: each miss is a special failure.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef float *(*model_fn)(float *output, const float *input, size_t n);
typedef double (*exact_fn)(double x);

struct test_case {
    const char *name;
    model_fn fast, libm;
    exact_fn exact;
    int n_inputs; /* 1: elementwise; 2: softmax over (x, 0) */
};

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double ref_exponential(double x) { return exp(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return sigmoid(x); }
static double ref_silu(double x) { return x * sigmoid(x); }
static double ref_elu(double x) { return x > 0 ? x : expm1(x); }
static double ref_elu_half(double x) { return x > 0 ? x : 0.5 * expm1(x); }
static double ref_selu(double x) { return 1.0507009873554804934193349852946 * (x > 0 ? x : 1.6732632423543772848170429916717 * expm1(x)); }
static double ref_celu_2(double x) { return x > 0 ? x : 2 * expm1(x / 2); }
static double ref_softplus(double x) { return softplus(x); }
static double ref_log_sigmoid(double x) { return (x < 0 ? x : 0) - log1p(exp(-fabs(x))); }
static double ref_mish(double x) { return x * tanh(softplus(x)); }
static double ref_gelu_erf(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
/* 0.5 x (1 + tanh(u)) written as x sigmoid(2u), which has no cancellation for x << 0 */
static double ref_gelu_tanh(double x) { return x * sigmoid(2 * 0.79788456080286535588 * (x + 0.044715 * x * x * x)); }
/* first output of softmax / log_softmax over the row (x, 0); a row holding +inf gives NaN, as in
   TensorFlow (inf - inf) */
static double ref_softmax(double x) { return isinf(x) && x > 0 ? NAN : sigmoid(x); }
static double ref_log_softmax(double x) { return isinf(x) && x > 0 ? NAN : x > 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

#include "cases.c"

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

/* error of `got` = f(x) against `exact`, or -1 for a special failure */
static double error_ulp(float x, float got, double exact)
{
    const float rounded = (float)exact;
    if (isnan(exact)) return isnan(got) ? 0 : -1;
    if (isinf(rounded)) return (double)got == (double)rounded ? 0 : -1;
    if (isnan(got) || isinf(got)) return -1;
    if (x == 0 && exact == 0 && (got != 0 || !signbit(got) != !signbit(exact))) return -1;
    int e;
    frexp(fabs(exact), &e);
    double ulp = ldexp(1.0, e - 24);
    if (ulp < FLT_MIN) ulp = FLT_MIN;
    return fabs((double)got - exact) / ulp;
}

enum { BLOCK = 4096 };
struct tally { double worst; float at; long special; };

static void measure(const struct test_case *c, model_fn fn, const float *xs, size_t n, struct tally *t)
{
    static float in[2 * BLOCK], out[2 * BLOCK];
    for (size_t k = 0; k < n; ++k) {
        in[k * (size_t)c->n_inputs] = xs[k];
        if (c->n_inputs == 2) in[2 * k + 1] = 0.0f;
    }
    fn(out, in, n);
    for (size_t k = 0; k < n; ++k) {
        const double err = error_ulp(xs[k], out[k * (size_t)c->n_inputs], c->exact((double)xs[k]));
        if (err < 0) {
            if (t->special++ < 3) fprintf(stderr, "%s: special failure at x = %.9g -> %.9g\n", c->name, (double)xs[k], (double)out[k * (size_t)c->n_inputs]);
        } else if (err > t->worst) {
            t->worst = err;
            t->at = xs[k];
        }
    }
}

static const float SPECIAL[] = {
    0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, 1e-45f, -1e-45f, 1e-30f, -1e-30f,
    0.5f, -0.5f, 9.0f, -9.0f, 9.5f, -9.5f, 20.0f, -20.0f, 88.72283f, -88.72283f, 88.7228394f, 89.0f, -89.0f,
    103.97f, -103.97f, 104.0f, -104.0f, 1e10f, -1e10f,
};

int main(int argc, char **argv)
{
    /* every float bit pattern stepping by `coarse`, then those in [-20, 20] stepping by `fine` */
    const uint32_t coarse = argc > 1 ? (uint32_t)atoi(argv[1]) : 4099u, fine = argc > 2 ? (uint32_t)atoi(argv[2]) : 1021u;
    const uint32_t twenty = 0x41a00000u; /* bits of 20.0f */
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; ++i) {
        const struct test_case *c = &CASES[i];
        struct tally fast = {0, 0, 0}, libm = {0, 0, 0};
        float xs[BLOCK];
        size_t n = 0;
        for (int pass = 0; pass < 3; ++pass) {
            const uint64_t step = pass == 0 ? coarse : fine, end = pass == 0 ? 0x100000000ull : twenty;
            const uint32_t sign = pass == 2 ? 0x80000000u : 0u;
            for (uint64_t b = 0; b <= end; b += step) {
                xs[n++] = from_bits((uint32_t)b | (pass ? sign : 0u));
                if (n == BLOCK) { measure(c, c->fast, xs, n, &fast); measure(c, c->libm, xs, n, &libm); n = 0; }
            }
        }
        for (size_t k = 0; k < sizeof SPECIAL / sizeof SPECIAL[0]; ++k) xs[n++] = SPECIAL[k];
        measure(c, c->fast, xs, n, &fast);
        measure(c, c->libm, xs, n, &libm);
        printf("%s %.3f %.9g %.3f %.9g %ld\n", c->name, fast.worst, (double)fast.at, libm.worst, (double)libm.at, fast.special);
    }
    return 0;
}
