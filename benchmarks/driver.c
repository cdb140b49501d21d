/*
 * Times one exported model function from C, as Lamarr calls it: no Python, no cffi.
 *
 * Compiled by benchmarks/run.py with -DMODEL=<symbol> -DN_IN=<inputs> -DN_OUT=<outputs>
 * (-DBATCH for a model with MODEL_batch, -DREAL=double for --dtype double), linked with the
 * model's object file. Prints
 *
 *   row <best ns/row> <median ns/row>
 *   batch <best ns/row> <median ns/row>      (with -DBATCH)
 *
 * over REPEATS timed passes of ROWS distinct rows, after one untimed warm-up pass, in CPU time of
 * this thread: on a core shared with other work, the time they take does not count.
 */
#define _POSIX_C_SOURCE 199309L
#include <stddef.h>

#include "timing.h"

#ifndef REAL
#define REAL float
#endif
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

#ifdef __cplusplus
extern "C" {
#endif
REAL *MODEL(REAL *output, const REAL *input);
#ifdef BATCH
REAL *CAT(MODEL, _batch)(REAL *output, const REAL *input, size_t n);
#endif
#ifdef __cplusplus
}
#endif

int main(int argc, char **argv)
{
    const int rows = argc > 1 ? atoi(argv[1]) : 1000, repeats = argc > 2 ? atoi(argv[2]) : 21;
    REAL *in = (REAL *)malloc(sizeof(REAL) * (size_t)rows * N_IN);
    REAL *out = (REAL *)malloc(sizeof(REAL) * (size_t)rows * N_OUT);
    double *ns = (double *)malloc(sizeof(double) * (size_t)repeats);
    unsigned seed = 12345u;
    double check = 0;
    if (!in || !out || !ns) return 1;
    for (int i = 0; i < rows * N_IN; ++i) { /* roughly standard normal rows, no libm needed */
        float s = 0;
        for (int k = 0; k < 4; ++k) {
            seed = seed * 1103515245u + 12345u;
            s += (float)(seed >> 8) / 16777216.0f - 0.5f;
        }
        in[i] = (REAL)(s * 1.7f);
    }
    for (int rep = -1; rep < repeats; ++rep) {
        const double t0 = now();
        for (int r = 0; r < rows; ++r) MODEL(out + (size_t)r * N_OUT, in + (size_t)r * N_IN);
        if (rep >= 0) ns[rep] = (now() - t0) / rows * 1e9;
    }
    for (int i = 0; i < rows * N_OUT; ++i) check += out[i];
    report("row", ns, repeats);
#ifdef BATCH
    for (int rep = -1; rep < repeats; ++rep) {
        const double t0 = now();
        CAT(MODEL, _batch)(out, in, (size_t)rows);
        if (rep >= 0) ns[rep] = (now() - t0) / rows * 1e9;
    }
    report("batch", ns, repeats);
#endif
    printf("check %.6g\n", check); /* keeps the calls alive */
    free(in);
    free(out);
    free(ns);
    return 0;
}
