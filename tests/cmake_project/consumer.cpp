// Calls the models of the manifest written by tests/test_cmake.py through the header the build generated:
// a classifier `cls` (3 -> 4) and a generator `gen` (3 conditions + 4 noise -> 2). Prints each output with %.9g.
#include <cstdio>

#include "lamarr_models.h"

int main() {
    float row[cls_N_INPUTS] = {0.5f, 1.5f, -1.0f};
    float probabilities[cls_N_OUTPUTS];
    cls(probabilities, row);
    for (float p : probabilities) std::printf("cls %.9g\n", double(p));

    float buffer[gen_N_INPUTS] = {0.5f, 1.5f, -1.0f};  // in place: max(inputs, outputs) floats
    const float random[gen_N_NOISE] = {0.1f, -0.2f, 0.3f, -0.4f};
    gen(buffer, buffer, random);
    for (int k = 0; k < gen_N_OUTPUTS; ++k) std::printf("gen %.9g\n", double(buffer[k]));
    return 0;
}
