/*
 * Times ONNX Runtime through its C API, as a C program would call it: no Python binding in the way.
 *
 *     ort_capi LIBONNXRUNTIME.so MODEL.onnx N_IN N_OUT ROWS REPEATS INPUT.f32 OUTPUT.f32 [D1 D2 ...]
 *
 * Runs the model (input "x", output "y", float32) on one thread: one Run per row (each row a [1, N_IN]
 * tensor over the caller's buffer) and one Run on all ROWS rows at once ([ROWS, N_IN]). D1 D2 ...: the
 * shape of one input row, when the model's input is a tensor per row ([1, D1, D2, ...] and [ROWS, D1, D2, ...],
 * D1 D2 ... = N_IN floats, row-major, as in the input file); the output is read as N_OUT floats per row. Prints
 *
 *   version <ONNX Runtime's version string>
 *   row <best ns/row> <median ns/row>
 *   batch <best ns/row> <median ns/row>
 *
 * in process CPU time, over REPEATS timed passes after one untimed warm-up, and writes the batch's
 * outputs to OUTPUT.f32 (benchmarks/peers.py compares them with the training library's).
 *
 * The wheel of onnxruntime ships libonnxruntime.so.1.x (loaded here by its path: its soname is not on the
 * loader's path) but not its headers, so the few entries used are declared here: OrtGetApiBase() and the
 * OrtApi table, a struct of function pointers whose order ONNX
 * Runtime keeps from release to release (new entries are appended; include/onnxruntime/core/session/
 * onnxruntime_c_api.h). Only entries of its first version are used, by their index there, and
 * GetApi(1) asks for that version. A wrong index would fail at once: the version is printed, every
 * status is checked, and the outputs are compared with Keras'.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

#define TIMING_CLOCK CLOCK_PROCESS_CPUTIME_ID /* ONNX Runtime's threads, were there any, would count */
#include "timing.h"

typedef struct Ort Ort; /* every ONNX Runtime object, opaque here */
typedef void (*OrtFn)(void);
typedef struct {
    const OrtFn *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} OrtApiBase;
typedef const OrtApiBase *(*OrtGetApiBaseFn)(void);

/* indices in struct OrtApi (version 1) and the signatures of those entries */
enum {
    GET_ERROR_MESSAGE = 2,
    CREATE_ENV = 3,
    CREATE_SESSION_FROM_ARRAY = 8,
    RUN = 9,
    CREATE_SESSION_OPTIONS = 10,
    SET_INTRA_OP_NUM_THREADS = 24,
    SET_INTER_OP_NUM_THREADS = 25,
    CREATE_TENSOR_WITH_DATA = 49,
    CREATE_CPU_MEMORY_INFO = 69
};
typedef const char *(*GetErrorMessageFn)(const Ort *status);
typedef Ort *(*CreateEnvFn)(int log_level, const char *log_id, Ort **env);
typedef Ort *(*CreateSessionFromArrayFn)(const Ort *env, const void *data, size_t size, const Ort *options, Ort **session);
typedef Ort *(*RunFn)(Ort *session, const Ort *run_options, const char *const *input_names, const Ort *const *inputs,
                      size_t n_inputs, const char *const *output_names, size_t n_outputs, Ort **outputs);
typedef Ort *(*CreateSessionOptionsFn)(Ort **options);
typedef Ort *(*SetThreadsFn)(Ort *options, int threads);
typedef Ort *(*CreateTensorFn)(const Ort *memory_info, void *data, size_t bytes, const int64_t *shape, size_t rank,
                               int element_type, Ort **value);
typedef Ort *(*CreateCpuMemoryInfoFn)(int allocator_type, int memory_type, Ort **info);
enum { LOG_WARNING = 2, ARENA_ALLOCATOR = 1, MEMORY_DEFAULT = 0, TENSOR_FLOAT = 1 };

static const OrtFn *api;

static void check(Ort *status, const char *what)
{
    if (status != NULL) {
        fprintf(stderr, "ONNX Runtime: %s: %s\n", what, ((GetErrorMessageFn)api[GET_ERROR_MESSAGE])(status));
        exit(1);
    }
}

enum { MAX_RANK = 8 };

/* A [rows, dims...] tensor over data (a row holds width floats: the product of dims, or [rows, width] when
   rank is 0). */
static Ort *tensor(const Ort *memory, float *data, int64_t rows, int64_t width, const int64_t *dims, int rank)
{
    int64_t shape[MAX_RANK + 1] = {rows, width};
    Ort *value = NULL;
    for (int k = 0; k < rank; ++k) shape[k + 1] = dims[k];
    check(((CreateTensorFn)api[CREATE_TENSOR_WITH_DATA])(memory, data, sizeof(float) * (size_t)(rows * width), shape,
                                                          (size_t)(rank > 0 ? rank + 1 : 2), TENSOR_FLOAT, &value),
          "CreateTensorWithDataAsOrtValue");
    return value;
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    data = (char *)malloc((size_t)n + 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    *size = (size_t)n;
    return data;
}

int main(int argc, char **argv)
{
    const char *in_names[1] = {"x"}, *out_names[1] = {"y"};
    size_t model_size, input_size;
    void *model;
    float *in, *out;
    double *ns;
    int n_in, n_out, rows, repeats, rank;
    int64_t dims[MAX_RANK], flat = 1;
    Ort *env = NULL, *options = NULL, *session = NULL, *memory = NULL, **row_in, **row_out, *all_in, *all_out;
    void *library;
    OrtGetApiBaseFn get_api_base;
    const OrtApiBase *base;
    if (argc < 9 || argc > 9 + MAX_RANK) {
        fprintf(stderr, "usage: %s LIBONNXRUNTIME.so MODEL.onnx N_IN N_OUT ROWS REPEATS INPUT.f32 OUTPUT.f32 [D1...]\n",
                argv[0]);
        return 2;
    }
    n_in = atoi(argv[3]), n_out = atoi(argv[4]), rows = atoi(argv[5]), repeats = atoi(argv[6]), rank = argc - 9;
    for (int k = 0; k < rank; ++k) flat *= dims[k] = atoll(argv[9 + k]);
    if (rank > 0 && flat != n_in) {
        fprintf(stderr, "the row shape holds %lld floats, not N_IN = %d\n", (long long)flat, n_in);
        return 2;
    }
    library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    *(void **)&get_api_base = dlsym(library, "OrtGetApiBase"); /* POSIX's way to a function's address */
    if (get_api_base == NULL || (base = get_api_base()) == NULL || (api = base->GetApi(1)) == NULL) return 1;
    printf("version %s\n", base->GetVersionString());
    model = read_file(argv[2], &model_size);
    in = (float *)read_file(argv[7], &input_size);
    out = (float *)calloc((size_t)rows * (size_t)n_out, sizeof(float));
    ns = (double *)malloc(sizeof(double) * (size_t)repeats);
    row_in = (Ort **)malloc(sizeof(Ort *) * (size_t)rows);
    row_out = (Ort **)malloc(sizeof(Ort *) * (size_t)rows);
    if (input_size != sizeof(float) * (size_t)rows * (size_t)n_in || !out || !ns || !row_in || !row_out) return 1;

    check(((CreateEnvFn)api[CREATE_ENV])(LOG_WARNING, "bench", &env), "CreateEnv");
    check(((CreateSessionOptionsFn)api[CREATE_SESSION_OPTIONS])(&options), "CreateSessionOptions");
    check(((SetThreadsFn)api[SET_INTRA_OP_NUM_THREADS])(options, 1), "SetIntraOpNumThreads");
    check(((SetThreadsFn)api[SET_INTER_OP_NUM_THREADS])(options, 1), "SetInterOpNumThreads");
    check(((CreateSessionFromArrayFn)api[CREATE_SESSION_FROM_ARRAY])(env, model, model_size, options, &session),
          "CreateSessionFromArray");
    check(((CreateCpuMemoryInfoFn)api[CREATE_CPU_MEMORY_INFO])(ARENA_ALLOCATOR, MEMORY_DEFAULT, &memory),
          "CreateCpuMemoryInfo");
    for (int r = 0; r < rows; ++r) { /* the tensors wrap the buffers: made once, outside the timing */
        row_in[r] = tensor(memory, in + (size_t)r * (size_t)n_in, 1, n_in, dims, rank);
        row_out[r] = tensor(memory, out + (size_t)r * (size_t)n_out, 1, n_out, NULL, 0);
    }
    all_in = tensor(memory, in, rows, n_in, dims, rank);
    all_out = tensor(memory, out, rows, n_out, NULL, 0);

    for (int rep = -1; rep < repeats; ++rep) {
        const double t0 = now();
        for (int r = 0; r < rows; ++r)
            check(((RunFn)api[RUN])(session, NULL, in_names, (const Ort *const *)&row_in[r], 1, out_names, 1,
                                     &row_out[r]),
                  "Run");
        if (rep >= 0) ns[rep] = (now() - t0) / rows * 1e9;
    }
    report("row", ns, repeats);
    for (int rep = -1; rep < repeats; ++rep) {
        const double t0 = now();
        check(((RunFn)api[RUN])(session, NULL, in_names, (const Ort *const *)&all_in, 1, out_names, 1, &all_out), "Run");
        if (rep >= 0) ns[rep] = (now() - t0) / rows * 1e9;
    }
    report("batch", ns, repeats);
    {
        FILE *f = fopen(argv[8], "wb");
        if (f == NULL || fwrite(out, sizeof(float), (size_t)rows * (size_t)n_out, f) != (size_t)rows * (size_t)n_out)
            return 1;
        fclose(f);
    }
    return 0; /* the process ends here: ONNX Runtime's objects are left to it */
}
