/*
 * What the C timing programs share (driver.c: our C; ort_capi.c: ONNX Runtime's C API): a CPU-time clock,
 * and the line each prints per figure, "<what> <best ns/row> <median ns/row>" over its timed passes.
 * TIMING_CLOCK is the calling thread's CPU time unless the includer names another clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef TIMING_CLOCK
#define TIMING_CLOCK CLOCK_THREAD_CPUTIME_ID
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(TIMING_CLOCK, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *ns, int repeats)
{
    qsort(ns, (size_t)repeats, sizeof ns[0], by_value);
    printf("%s %.2f %.2f\n", what, ns[0], ns[repeats / 2]);
}
