"""Stress SYMBOL_batch against one call per row, bit for bit, on random Dense networks (issue 27, item 6).

Draws networks of Dense layers (odd and even widths 1-300, one to four layers, residual adds, every
activation the fast math has), exports each with the Python API, compiles it once per
instruction-set variant this CPU runs (``-DSYMBOL_ISA=level``, as tests/test_dispatch.py forces them)
with ``$CC $CFLAGS`` (default ``cc -std=c99 -O3``), and compares ``SYMBOL_batch`` on the first n rows,
for every odd n from 1 to 69 and n = 70, with one call per row, and every variant's rows with the
baseline's. Prints each mismatch and exits 1 if there was one.

    python benchmarks/batch_bits.py --models 100 --seed 0
    CC=clang CFLAGS="-std=gnu99 -O2" python benchmarks/batch_bits.py
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from exporter import export_keras
from exporter.backend.isa import VARIANTS, missing_on_this_cpu
from exporter.build.toolchain import CompiledModel, compile_files

ACTIVATIONS = ["tanh", "relu", "gelu", "silu", "sigmoid", "elu", "softplus", "selu", "linear", "mish", "softmax"]
COUNTS = [*range(1, 70, 2), 70]


def draw(keras, rng: random.Random):
    """A random Dense network, its weights and biases drawn too (Keras' zero biases would hide their sign)."""
    layers = keras.layers
    x = keras.Input((rng.randint(1, 40),))
    h = x
    for _ in range(rng.randint(1, 4)):
        width = rng.choice([rng.randint(1, 300), rng.randrange(1, 300, 2), rng.randint(1, 9)])
        h = layers.Dense(width, activation=rng.choice(ACTIVATIONS))(h)
        if rng.random() < 0.4:
            h = layers.Add()([h, layers.Dense(width, activation=rng.choice(ACTIVATIONS))(h)])
    model = keras.Model(x, layers.Dense(rng.randint(1, 20), activation=rng.choice(ACTIVATIONS))(h))
    values = np.random.default_rng(rng.randrange(2**32))
    for w in model.weights:
        scale = 1 / np.sqrt(w.shape[0]) if len(w.shape) == 2 else 0.5
        w.assign((values.standard_normal(tuple(w.shape)) * scale).astype("float32"))
    return model


def check(keras, seed: int, folder: Path) -> list[str]:
    """The mismatches of one drawn network (none: every variant and every batch gave the baseline's bits)."""
    ex = export_keras(draw(keras, random.Random(seed)), name="bits")
    c_file, _ = ex.write(folder / "bits.c")
    n_in, n_out = ex.graph.n_inputs, ex.graph.n_outputs
    rows = np.random.default_rng(seed).standard_normal((max(COUNTS), n_in)).astype(np.float32) * 2
    problems, baseline = [], None
    for variant in VARIANTS["auto"]:
        if missing_on_this_cpu(variant):
            continue
        library = compile_files(c_file, folder / f"libbits{variant.level}.so", (f"bits_ISA={variant.level}",))
        model = CompiledModel("bits", library, n_in, n_out)
        one_by_one = model(rows)
        baseline = one_by_one if baseline is None else baseline
        if not np.array_equal(one_by_one.view(np.uint32), baseline.view(np.uint32)):
            problems.append(f"model {seed}, {variant.name}: one call per row differs from the baseline's")
        for n in COUNTS:
            if not np.array_equal(model.batch(rows[:n]).view(np.uint32), one_by_one[:n].view(np.uint32)):
                problems.append(f"model {seed}, {variant.name}: bits_batch on {n} rows differs from one call per row")
                break
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from exporter.frontends.keras.load import import_keras

    keras = import_keras()
    problems = []
    with tempfile.TemporaryDirectory(prefix="batch-bits-") as tmp:
        for seed in range(args.seed, args.seed + args.models):
            folder = Path(tmp) / str(seed)  # a library loaded once must not be overwritten: one folder per model
            folder.mkdir()
            found = check(keras, seed, folder)
            problems += found
            print("\n".join(found) or f"model {seed}: the same bits", flush=True)
    print(f"{len(problems)} mismatches in {args.models} models")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
