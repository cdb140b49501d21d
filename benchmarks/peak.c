/*
 * The compute limit of one core for the code our Dense compiles to: independent float
 * multiplies and adds (no FMA: ISO C modes do not contract a * b + c), vectorized by the
 * compiler for whatever -march it is given. Prints "peak <GFLOP/s>", best of 7 runs (CPU time).
 * 6 to 8 multiply and add chains keep every FP pipe busy through their 3-cycle latencies. The empty asm keeps GCC from turning the adds into in-order reductions.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>

/* 6 (8 with AVX-512) multiply and add chains of full vectors, constants included in registers */
#if defined(__AVX512F__)
enum { W = 128, STEPS = 500000 };
#elif defined(__AVX__)
enum { W = 48, STEPS = 1000000 };
#else
enum { W = 24, STEPS = 2000000 };
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    float m[W], a[W];
    const float f = argc > 5 ? 1.0f : 0.99999994f, g = argc > 5 ? 0.0f : 1e-7f; /* opaque constants */
    double best = 0, sum = 0;
    for (int j = 0; j < W; ++j) m[j] = a[j] = 1.0f + (float)j;
    for (int run = 0; run < 7; ++run) {
        const double t0 = now();
        for (int i = 0; i < STEPS; ++i) {
#if defined(__GNUC__)
            __asm__("");
#endif
            for (int j = 0; j < W; ++j) m[j] *= f;
            for (int j = 0; j < W; ++j) a[j] += g;
        }
        const double flops = 2.0 * W * STEPS / (now() - t0);
        if (flops > best) best = flops;
    }
    for (int j = 0; j < W; ++j) sum += (double)m[j] + (double)a[j];
    printf("peak %.3f\ncheck %g\n", best / 1e9, sum);
    return 0;
}
