/*
 * The memory limit of a per-row call: one core reading N bytes of floats (default 335,872: the
 * efficiency network's weights) over and over, as one call per row reads its Dense weights,
 * each once per call, in order. They fit in L2 but not in L1, so this is the L2 read
 * bandwidth. Compiled for whatever -march it is given; prints "stream <GB/s>", best of 7 runs
 * (CPU time of this thread).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { W = 128 }; /* floats summed at once: 8 AVX-512 vectors, as a per-row Dense block */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    const long bytes = argc > 1 ? atol(argv[1]) : 335872L;
    const long n = bytes / (long)sizeof(float) / W * W, passes = 1 + 400000000L / (n * (long)sizeof(float));
    float *w = malloc(sizeof(float) * (size_t)n), acc[W] = {0};
    double best = 1e30, sum = 0;
    if (!w || n == 0) return 1;
    for (long i = 0; i < n; ++i) w[i] = 1e-9f * (float)(i % 1000);
    for (int run = 0; run < 7; ++run) {
        const double t0 = now();
        for (long p = 0; p < passes; ++p) {
            for (long i = 0; i < n; i += W) {
#if defined(__GNUC__)
                __asm__(""); /* vectorized across the W sums, not reduced in order */
#endif
                for (int j = 0; j < W; ++j) acc[j] += w[i + j];
            }
        }
        const double t = (now() - t0) / (double)passes;
        if (t < best) best = t;
    }
    for (int j = 0; j < W; ++j) sum += (double)acc[j];
    printf("stream %.3f\ncheck %g\n", (double)n * sizeof(float) / best / 1e9, sum);
    free(w);
    return 0;
}
