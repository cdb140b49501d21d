// Checks a library of generated models against the reference rows the Python side wrote for them.
//
//   lamarr_generated_test LIBRARY.so A.ref.txt [B.ref.txt ...]
//
// (a) Through the headers: every function the reference files list is linked (registry.cpp) with the
//     signature its n_noise implies; every model symbol reproduces the Python outputs within the file's
//     tolerance, out of place and in place (a pipeline with its N_RANDOM noise values); its sub-steps
//     (SYMBOL_preprocess -> SYMBOL_dnn -> SYMBOL_postprocess, and scikinC's SYMBOL_tX -> SYMBOL_dnn ->
//     SYMBOL_tY_inverse where exported) give bit for bit what the symbol gives; every other function runs.
//     The header's NAME_N_INPUTS, NAME_N_OUTPUTS and NAME_N_RANDOM (a pipeline) or NAME_N_NOISE (a
//     generator) are checked against the reference rows when registry.cpp compiles.
// (b) Through dlopen/dlsym, exactly as Lamarr loads models: every function is found, and every model
//     symbol reproduces the Python outputs, one row per call and all rows in one SYMBOL_batch call (the same
//     bits as one call per row).
// Every buffer is a heap array of exactly the size the function needs (in-place: max(inputs, outputs)),
// so that AddressSanitizer sees any access beyond it (cmake -DLAMARR_EXPORT_SANITIZE=ON).
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "registry.hpp"

namespace {

using lamarr_test::Function;

struct Symbol {
    std::string name;
    int n_inputs = 0, n_outputs = 0, n_noise = 0;
    double atol = 0, rtol = 0;
    std::vector<std::vector<float>> in, random, out;
};

struct Reference {
    std::map<std::string, Function> functions;  // from the 'function' lines (pointers unset)
    std::vector<Symbol> symbols;
};

int failures = 0;

void fail(const std::string &message) {
    std::fprintf(stderr, "FAIL: %s\n", message.c_str());
    ++failures;
}

std::vector<float> floats(std::istringstream &line) {
    std::vector<float> values;
    std::string word;
    while (line >> word) values.push_back(std::strtof(word.c_str(), nullptr));  // strtof reads inf and nan
    return values;
}

void read_reference(const char *path, Reference &ref) {
    std::ifstream file(path);
    if (!file) {
        fail(std::string(path) + ": cannot open");
        return;
    }
    std::string text;
    while (std::getline(file, text)) {
        if (text.empty() || text[0] == '#') continue;
        std::istringstream line(text);
        std::string tag;
        line >> tag;
        if (tag == "function") {
            Function f{};
            line >> f.name >> f.n_inputs >> f.n_outputs >> f.n_noise;
            ref.functions[f.name] = f;
        } else if (tag == "symbol") {
            Symbol s;
            int n_rows = 0;
            line >> s.name >> s.n_inputs >> s.n_outputs >> s.n_noise >> n_rows >> s.atol >> s.rtol;
            ref.symbols.push_back(s);
        } else if (ref.symbols.empty()) {
            fail(std::string(path) + ": rows before a 'symbol' line");
        } else {
            Symbol &s = ref.symbols.back();
            (tag == "in" ? s.in : tag == "random" ? s.random : s.out).push_back(floats(line));
        }
    }
}

bool close(float c, float py, double atol, double rtol) {
    if (std::isnan(c) || std::isnan(py)) return std::isnan(c) && std::isnan(py);
    if (std::isinf(py)) return c == py;
    return std::fabs(double(c) - double(py)) <= atol + rtol * std::fabs(double(py));
}

// Calls f out of place with exact-size heap buffers.
std::vector<float> call(const Function &f, const std::vector<float> &in, const std::vector<float> &random) {
    std::unique_ptr<float[]> input(new float[size_t(f.n_inputs)]);
    std::unique_ptr<float[]> output(new float[size_t(f.n_outputs)]);
    std::copy(in.begin(), in.begin() + f.n_inputs, input.get());
    std::unique_ptr<float[]> noise(f.n_noise ? new float[size_t(f.n_noise)] : nullptr);
    if (f.n_noise) std::copy(random.begin(), random.begin() + f.n_noise, noise.get());
    float *returned = f.generator ? f.generator(output.get(), input.get(), noise.get())
                                  : f.deterministic(output.get(), input.get());
    if (returned != output.get()) fail(f.name + ": does not return its output buffer");
    return std::vector<float>(output.get(), output.get() + f.n_outputs);
}

// Calls f in place, in a heap buffer of exactly max(inputs, outputs) floats.
std::vector<float> call_in_place(const Function &f, const std::vector<float> &in, const std::vector<float> &random) {
    const size_t n = size_t(std::max(f.n_inputs, f.n_outputs));
    std::unique_ptr<float[]> buffer(new float[n]);
    std::fill(buffer.get(), buffer.get() + n, 0.0f);
    std::copy(in.begin(), in.begin() + f.n_inputs, buffer.get());
    std::unique_ptr<float[]> noise(f.n_noise ? new float[size_t(f.n_noise)] : nullptr);
    if (f.n_noise) std::copy(random.begin(), random.begin() + f.n_noise, noise.get());
    if (f.generator) f.generator(buffer.get(), buffer.get(), noise.get());
    else f.deterministic(buffer.get(), buffer.get());
    return std::vector<float>(buffer.get(), buffer.get() + f.n_outputs);
}

void compare(const std::string &what, const Symbol &s, size_t row, const std::vector<float> &c) {
    for (size_t k = 0; k < c.size(); ++k) {
        if (!close(c[k], s.out[row][k], s.atol, s.rtol)) {
            char message[256];
            std::snprintf(message, sizeof message, "%s: row %zu output %zu: C %.9g, Python %.9g", what.c_str(), row, k,
                          double(c[k]), double(s.out[row][k]));
            fail(message);
        }
    }
}

bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    if (a.size() != b.size()) return false;
    for (size_t k = 0; k < a.size(); ++k)
        if (!(a[k] == b[k] || (std::isnan(a[k]) && std::isnan(b[k])))) return false;
    return true;
}

const Function *find(const std::map<std::string, const Function *> &linked, const std::string &name) {
    auto it = linked.find(name);
    return it == linked.end() ? nullptr : it->second;
}

// (a) through the headers
void check_linked(const Reference &ref) {
    std::map<std::string, const Function *> linked;
    for (const Function &f : lamarr_test::linked_functions) linked[f.name] = &f;
    for (const auto &[name, listed] : ref.functions) {
        const Function *f = find(linked, name);
        if (!f) {
            fail(name + ": listed in the reference rows but not linked");
        } else if ((f->generator != nullptr) != (listed.n_noise > 0)) {
            fail(name + ": its header declares the wrong signature for n_noise " + std::to_string(listed.n_noise));
        }
    }
    std::vector<std::string> called;
    for (const Symbol &s : ref.symbols) {
        const Function *f = find(linked, s.name);
        if (!f) continue;
        const Function *pre = find(linked, s.name + "_preprocess");
        const Function *dnn = find(linked, s.name + "_dnn_random");  // a generator's network beside scikinC's _dnn
        const Function *joined = dnn ? find(linked, s.name + "_dnn") : nullptr;
        if (!dnn) dnn = find(linked, s.name + "_dnn");
        const Function *post = find(linked, s.name + "_postprocess");
        const Function *tx = find(linked, s.name + "_tX");
        const Function *ty = find(linked, s.name + "_tY_inverse");
        for (size_t row = 0; row < s.in.size(); ++row) {
            const std::vector<float> random = s.n_noise ? s.random[row] : std::vector<float>();
            const std::vector<float> out = call(*f, s.in[row], random);
            compare("linked " + s.name, s, row, out);
            if (!same_bits(call_in_place(*f, s.in[row], random), out)) fail(s.name + ": in-place call differs");
            if (dnn) {  // the sub-steps, in turn, give what the symbol gives
                std::vector<float> x = pre ? call(*pre, s.in[row], {}) : s.in[row];
                x = call(*dnn, x, random);
                if (post) x = call(*post, x, {});
                if (!same_bits(x, out)) fail(s.name + ": preprocess -> dnn -> postprocess differs from the symbol");
                if (pre && !same_bits(call_in_place(*pre, s.in[row], {}), call(*pre, s.in[row], {})))
                    fail(s.name + "_preprocess: in-place call differs");
            }
            if (tx || ty || joined) {  // scikinC's names, as Lamarr's hand-written glue calls them
                std::vector<float> x = tx ? call(*tx, s.in[row], {}) : s.in[row];
                if (joined) {  // scikinC's generator network: one input, the conditions then the noise
                    x.insert(x.end(), random.begin(), random.end());
                    if (!same_bits(call_in_place(*joined, x, {}), call(*joined, x, {})))
                        fail(s.name + "_dnn: in-place call differs");
                    x = call(*joined, x, {});
                } else {
                    x = call(*dnn, x, random);
                }
                if (ty) x = call(*ty, x, {});
                if (!same_bits(x, out)) fail(s.name + ": _tX -> _dnn -> _tY_inverse differs from the symbol");
            }
        }
        for (const Function *g : {f, pre, dnn, post, tx, joined, ty})
            if (g) called.push_back(g->name);
    }
    for (const Function &f : lamarr_test::linked_functions) {  // the rest (inverses...): each runs on a row
        if (std::find(called.begin(), called.end(), f.name) != called.end()) continue;
        const std::vector<float> row(size_t(f.n_inputs), 0.5f), random(size_t(f.n_noise), 0.0f);
        call(f, row, random);
        call_in_place(f, row, random);
    }
}

// SYMBOL_batch on all of a symbol's reference rows in one call, with exact-size heap buffers: each row within
// tolerance of the Python outputs and bit for bit what one SYMBOL call gives.
void check_batch(void *handle, const Function &f, const Symbol &s) {
    using DeterministicBatch = float *(*)(float *output, const float *input, size_t n);
    using GeneratorBatch = float *(*)(float *output, const float *input, const float *random, size_t n);
    void *symbol = dlsym(handle, (s.name + "_batch").c_str());
    if (!symbol) {
        fail("dlsym " + s.name + "_batch: not exported");
        return;
    }
    const size_t n = s.in.size(), n_in = size_t(f.n_inputs), n_out = size_t(f.n_outputs), n_noise = size_t(f.n_noise);
    std::unique_ptr<float[]> input(new float[n * n_in]);
    std::unique_ptr<float[]> output(new float[n * n_out]);
    std::unique_ptr<float[]> noise(n_noise ? new float[n * n_noise] : nullptr);
    for (size_t row = 0; row < n; ++row) {
        std::copy(s.in[row].begin(), s.in[row].begin() + f.n_inputs, input.get() + row * n_in);
        if (n_noise) std::copy(s.random[row].begin(), s.random[row].begin() + f.n_noise, noise.get() + row * n_noise);
    }
    float *returned = n_noise ? reinterpret_cast<GeneratorBatch>(symbol)(output.get(), input.get(), noise.get(), n)
                              : reinterpret_cast<DeterministicBatch>(symbol)(output.get(), input.get(), n);
    if (returned != output.get()) fail(s.name + "_batch: does not return its output buffer");
    for (size_t row = 0; row < n; ++row) {
        const std::vector<float> got(output.get() + row * n_out, output.get() + (row + 1) * n_out);
        compare("dlsym " + s.name + "_batch", s, row, got);
        const std::vector<float> random = n_noise ? s.random[row] : std::vector<float>();
        if (!same_bits(got, call(f, s.in[row], random))) fail(s.name + "_batch: differs from one call per row");
    }
}

// (b) through dlopen/dlsym, as Lamarr loads models
void check_dlopen(const char *library, const Reference &ref) {
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fail(std::string("dlopen ") + library + ": " + dlerror());
        return;
    }
    std::map<std::string, Function> loaded;
    for (const auto &[name, listed] : ref.functions) {
        void *symbol = dlsym(handle, name.c_str());
        if (!symbol) {
            fail("dlsym " + name + ": not exported");
            continue;
        }
        Function f = listed;
        if (f.n_noise) f.generator = reinterpret_cast<lamarr_test::Generator>(symbol);
        else f.deterministic = reinterpret_cast<lamarr_test::Deterministic>(symbol);
        loaded[name] = f;
    }
    for (const Symbol &s : ref.symbols) {
        auto it = loaded.find(s.name);
        if (it == loaded.end()) continue;
        for (size_t row = 0; row < s.in.size(); ++row) {
            const std::vector<float> random = s.n_noise ? s.random[row] : std::vector<float>();
            compare("dlsym " + s.name, s, row, call(it->second, s.in[row], random));
            compare("dlsym in place " + s.name, s, row, call_in_place(it->second, s.in[row], random));
        }
        check_batch(handle, it->second, s);
    }
    dlclose(handle);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s LIBRARY.so A.ref.txt [B.ref.txt ...]\n", argv[0]);
        return 2;
    }
    Reference ref;
    for (int i = 2; i < argc; ++i) read_reference(argv[i], ref);
    size_t rows = 0;
    for (const Symbol &s : ref.symbols) {
        rows += s.in.size();
        if (s.in.size() != s.out.size() || (s.n_noise && s.random.size() != s.in.size()))
            fail(s.name + ": malformed rows");
    }
    if (ref.symbols.empty()) fail("no reference rows");
    check_linked(ref);
    check_dlopen(argv[1], ref);
    std::printf("%zu functions, %zu symbols, %zu reference rows: %s\n", ref.functions.size(), ref.symbols.size(),
                rows, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
