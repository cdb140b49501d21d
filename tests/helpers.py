"""Small tools the tests share: random weights, strict compiles, export-and-check."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter import export_keras
from exporter.backend import CSource, render_set
from exporter.backend.isa import VARIANTS, missing_on_this_cpu
from exporter.check.batch_bits import build_and_run
from exporter.check.compare import ParityReport

ROOT = Path(__file__).resolve().parent.parent

# Lamarr's strict flags and then some: every generated file must pass all of these.
STRICT_CFLAGS = [
    "-O3",
    "-Wall",
    "-Wextra",
    "-pedantic-errors",
    "-Werror",
    "-Wconversion",
    "-Wdouble-promotion",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wfloat-equal",
    "-Wcast-qual",
    "-Wundef",
    "-Wvla",
    "-Wredundant-decls",
]
STRICT_C = ["gcc", "-std=c99", *STRICT_CFLAGS, "-shared", "-fPIC"]
STRICT_CXX = ["g++", "-x", "c++", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion", "-c"]


def run_cli(capsys: Any, *args: Any) -> tuple[int, str, str]:
    """``lamarr-export ARGS`` in process: exit code, stdout, stderr."""
    from exporter.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_quietly(*args: Any) -> tuple[int, str, str]:
    """Run the CLI in-process, capturing stdout and stderr (module-scoped fixtures cannot use capsys)."""
    from exporter.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def validate_document(document: dict) -> None:
    """``document`` (a --json output, a report.json) against the committed schema."""
    import jsonschema

    from exporter.check.report.document import SCHEMA

    jsonschema.validate(document, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)


def assert_user_error(capsys: Any, tmp_path: Path, args: list[Any], *fragments: str) -> None:
    """Exit 2, every fragment in the message, no traceback, no file left behind in ``tmp_path``."""
    before = set(os.listdir(tmp_path))
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert set(os.listdir(tmp_path)) == before, "a user error must leave no file behind"


def assert_refused(keras: Any, capsys: Any, tmp_path: Path, x: Any, parts: list[Any], *fragments: str) -> None:
    """A model of ``x`` joining its flattened ``parts`` is refused by the CLI with every fragment at once."""
    L = keras.layers
    model = keras.Model(x, L.Concatenate()([L.Flatten()(p) for p in parts]))
    assert_user_error(capsys, tmp_path, [saved(model, tmp_path), "-o", tmp_path / "m.c"], *fragments)


def randomize(model: Any, seed: int = 0) -> Any:
    """Give every weight a random value so no term of a layer hides behind a zero.

    Kernels get the spread of a trained network (std 1/sqrt(fan-in), gain about 1 per
    layer); biases, slopes and shifts std 0.5; variances lie in [0.5, 2].
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        elif len(shape) == 2:
            w.assign((rng.standard_normal(shape) / np.sqrt(shape[0])).astype("float32"))
        elif not w.path.endswith("count"):
            w.assign((rng.standard_normal(shape) * 0.5).astype("float32"))
    return model


def residual_model(keras: Any) -> Any:
    """The example's kinds of step (Dense tanh, a residual add, softmax) at width 40: an AVX-512 loop of
    32 columns and a tail of 8, the baseline's 32-column block and a tail; compiles in a fraction of
    the example's time, for tests of the code's shapes rather than of the example's numbers."""
    L = keras.layers
    x = keras.Input((12,))
    h = L.Dense(40, activation="tanh")(x)
    h = L.Add()([h, L.Dense(40, activation="tanh")(h)])
    return randomize(keras.Model(x, L.Dense(4, activation="softmax")(h)), seed=5)


def every_op(keras: Any) -> Any:
    """One model touching every IR op and template, with widths growing and shrinking."""
    L = keras.layers
    x = keras.Input((6,))
    a = L.Dense(16, activation="tanh")(x)
    b = L.BatchNormalization()(L.Dense(16, use_bias=False)(a))
    b = L.Activation("gelu")(b)
    c = L.Concatenate()([a, b, x])
    d = L.PReLU()(L.Dense(8)(c))
    e = L.Maximum()([d, L.Dense(8, activation="elu")(x)])
    e = L.Average()([e, L.Rescaling(0.5, offset=0.1)(e)])
    f = L.Softmax()(L.Dense(3)(L.ReLU(max_value=4.0, negative_slope=0.1)(e)))
    return randomize(keras.Model(x, f))


def saved(model: Any, tmp_path: Path, name: str = "model.keras") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


@functools.cache
def custom_layer(keras: Any) -> type:
    """A custom layer class, registered once per session (Keras refuses a second registration)."""

    @keras.saving.register_keras_serializable(package="tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    return Doubler


def refused_model(keras: Any, tmp_path: Path, name: str = "odd.keras") -> Path:
    """A saved model whose stored configuration shows three refused layers (a Lambda, a custom layer,
    a ConvLSTM1D) among supported Dense, Reshape and Flatten layers."""
    L = keras.layers
    x = keras.Input((4,))
    y = L.Lambda(lambda t: t + 1.0, name="plus_one")(x)
    y = custom_layer(keras)(name="doubler")(y)
    y = L.Dense(4, name="fine_dense")(y)
    y = L.Reshape((2, 2, 1), name="to_3d")(y)
    y = L.Flatten(name="flat")(L.ConvLSTM1D(2, 1, name="recurrent")(y))
    return saved(keras.Model(x, L.Dense(1, name="head")(y)), tmp_path, name)


def small_model_set(keras: Any, folder: Path) -> Path:
    """``folder`` with a generator (two inputs), a classifier, their transformers and ``models.toml``:
    every kind of function a model set has (symbols, _preprocess, _dnn, _postprocess, inverses), small."""
    import pickle
    import textwrap

    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    (folder / "nets").mkdir(parents=True)
    L = keras.layers
    cond, noise = keras.Input((3,)), keras.Input((4,))
    h = L.Dense(16, activation="tanh")(L.Concatenate()([cond, noise]))
    saved(randomize(keras.Model([cond, noise], L.Dense(2)(h))), folder / "nets", "gen.keras")
    x = keras.Input((3,))
    saved(randomize(keras.Model(x, L.Dense(4)(L.Dense(8, activation="relu")(x)))), folder / "nets", "cls.keras")
    rng = np.random.default_rng(0)
    raw = np.c_[rng.normal(size=300), np.exp(rng.normal(size=300)), rng.normal(size=300) * 3]
    (folder / "tX.pkl").write_bytes(pickle.dumps(StandardScaler().fit(np.c_[raw[:, 0], np.log(raw[:, 1]), raw[:, 2]])))
    target = QuantileTransformer(n_quantiles=40, output_distribution="normal").fit(rng.gamma(2.0, size=(300, 2)))
    (folder / "tY.pkl").write_bytes(pickle.dumps(target))
    (folder / "models.toml").write_text(
        textwrap.dedent("""
        [models.gen]
        model = "nets/gen.keras"
        log_columns = [1]
        preprocess = ["tX.pkl"]
        target_transform = "tY.pkl"
        noise = 4

        [models.cls]
        model = "nets/cls.keras"
        preprocess = ["tX.pkl"]
        output_activation = "softmax"
        """)
    )
    return folder


def export_and_check(model: Any, tmp_path: Path, **check: Any) -> ParityReport:
    """Save to .keras, export from the file, compile (the variant this CPU runs), and check parity against Keras."""
    ex = export_keras(saved(model, tmp_path))
    return ex.check(ex.compile(tmp_path, one_row=True), **check)


def assert_parity_and_batch_bits(model: Any, tmp_path: Path) -> None:
    """``export_and_check`` on at least 10,000 rows, then one row and a batch in every variant give the same bits."""
    ex = export_keras(saved(model, tmp_path))
    report = ex.check(ex.compile(tmp_path, one_row=True))
    assert report.rows >= 10_000
    assert report.passed, report.table()
    bits = build_and_run(ex.source, tmp_path)
    assert bits.passed and bits.results, bits.verdict()


def one_layer_models(keras: Any, layers: list[tuple[str, tuple[int, ...], Any]]) -> list[tuple[str, Any]]:
    """(name, model) for each (name, input shape, layer): the layer alone on its input, random weights (a seed each)."""
    models = []
    for i, (name, shape, layer) in enumerate(layers):
        x = keras.Input(shape)
        models.append((name, randomize(keras.Model(x, layer(x)), seed=i)))
    return models


def models_in_one_file(name: str, models: list[tuple[str, Any]]) -> CSource:
    """Every (name, Keras model) exported and laid end to end in one C file: one build per compiler for a sweep."""
    return render_set(name, "test", [export_keras(m, name=n).source for n, m in models])


def assert_same_bits_everywhere(source: CSource, tmp_path: Path, monkeypatch: Any, compiler: str) -> None:
    """Built with ``compiler`` at -O3: every network of ``source`` gives, in every variant this CPU runs, one row or
    a batch, the baseline's one-row bits (exporter.check.batch_bits), exactly."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    monkeypatch.setenv("CC", compiler)
    monkeypatch.setenv("CFLAGS", "-std=c99 -O3")
    check = build_and_run(source, tmp_path)
    assert check.passed, check.verdict()
    runnable = {v.name for v in VARIANTS["auto"] if not missing_on_this_cpu(v)}
    assert {r.variant for r in check.results} == runnable
    assert len(check.results) == len(runnable) * len(source.networks)


def strict_compile(c_file: Path, out_dir: Path) -> None:
    for cmd in (
        [*STRICT_C, str(c_file), "-o", str(out_dir / "strict.so"), "-lm"],
        [*STRICT_CXX, str(c_file), "-o", str(out_dir / "strict.o")],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"


_LITERAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?f")


def perturb_weight(c_source: str, op_name: str, delta: float = 0.5) -> str:
    """Test hook for ``Export.c_edit``: add ``delta`` to the first weight literal of the op named
    ``op_name`` (its arrays follow the comment ``/* op_name */``). Sources without that op, such as
    trace builds of earlier steps, come back unchanged."""
    marker = f"/* {op_name} */\n"
    if marker not in c_source:
        return c_source
    start = c_source.index("{", c_source.index(marker))
    literal = _LITERAL.search(c_source, start)
    assert literal is not None, f"no weight literal after {marker!r}"
    value = float(literal.group()[:-1]) + delta
    return c_source[: literal.start()] + f"{value:.6e}f" + c_source[literal.end() :]


def first_value(c_source: str, array: str) -> int:
    """Where the first value of the static array ``array`` starts in the C text: past the zeros before a Dense
    kernel's weights, which end in a comment (exporter/backend/isa.py ``kernel_pad``)."""
    start = c_source.index("{", c_source.index(f" {array}[")) + 1
    pad_end = c_source.find("*/", start, c_source.find("\n", start + 1))
    return pad_end + 2 if pad_end >= 0 else start


def change_4th_digit(c_source: str, array: str, index: int = 0) -> str:
    """Test hook for ``Export.c_edit``: value ``index`` of the weight array ``array`` changed in its 4th
    significant digit (the weakest break the float32 rule was measured against: docs/parity.md)."""
    start = first_value(c_source, array)
    for _ in range(index):
        start = c_source.index(",", start) + 1
    end = min(c_source.index(",", start), c_source.index("}", start))
    value = float(c_source[start:end].strip().rstrip("f"))
    changed = float(f"{value:.4g}") + 10.0 ** (np.floor(np.log10(abs(value))) - 3)
    return c_source[:start] + f" {changed:.9g}f" + c_source[end:]


def perturb_column_step(c_source: str, op_name: str, delta: float = 0.5) -> str:
    """Test hook for ``Export.c_edit``: add ``delta`` to every value the per-column op ``op_name`` of a
    preprocessing or target transform writes (its loop follows the comment ``/* op_name: ...``), in every
    function that runs it. Sources without that op come back unchanged."""
    marker, parts, at = f"/* {op_name}: ", [], 0
    while (found := c_source.find(marker, at)) >= 0:
        write = c_source.index("] = y;", found)
        parts.append(c_source[at:write] + f"] = y + {delta!r};")
        at = write + len("] = y;")
    return "".join(parts) + c_source[at:]


def comment_symbols(texts: list[str], folder: Path, cc: str = "gcc") -> list[str]:
    """The symbols a C file defines whose comments are ``texts`` through the templates' ``c_comment`` filter,
    in a banner at file scope and in a function body, followed by ``int x = 1;``: compiled under ``-trigraphs``
    (``??/`` is a backslash) and the strict warnings as errors; inert comments leave ``f`` and ``x`` alone."""
    from exporter.backend.templates import environment

    comment = environment().filters["c_comment"]
    lines = ["/*", *(f" *   {comment(t)}" for t in texts), " */", "void f(void);", "void f(void)", "{"]
    lines += [*(f"    {{   /* {comment(t)}: step */ }}" for t in texts), "}", "int x = 1;"]
    source, obj = folder / "comments.c", folder / "comments.o"
    source.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))  # raw, if a filter let it through
    flags = ["-std=c99", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-pedantic-errors"]
    subprocess.run([cc, *flags, "-c", str(source), "-o", str(obj)], check=True, capture_output=True)
    listed = subprocess.run(["nm", str(obj)], check=True, capture_output=True, text=True).stdout
    return [line.split()[-1] for line in listed.splitlines() if line.strip()]  # defined and undefined


def exported_symbols(library: Path) -> list[str]:
    return subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout.split()


def export_through_cli_and_manifest(capsys: Any, tmp_path: Path, model: Path, samples: int = 500, **keys: Any) -> str:
    """Export ``model`` from the command line and from a one-entry manifest with the same ``keys``
    (manifest key -> value; CLI flag ``--key-with-dashes``); each must pass parity and compile
    under the strict flags (the library ``strict.so`` beside each C file). Returns the CLI's output."""
    flags: list[Any] = []
    lines = [f'model = "{model}"']
    for key, value in keys.items():
        values = value if isinstance(value, list) else [value]
        flags += [f"--{key.replace('_', '-')}", *values]
        plain = (
            [str(v) for v in values] if isinstance(value, list) else str(value) if isinstance(value, Path) else value
        )
        lines.append(f"{key} = {json.dumps(plain)}")
    (tmp_path / "set").mkdir(exist_ok=True)
    manifest = tmp_path / "set" / "models.toml"
    manifest.write_text("[models.entry]\n" + "\n".join(lines) + "\n")
    outputs = []
    for args, c_file in (
        ([model, *flags], tmp_path / "cli" / "model.c"),
        ([manifest], tmp_path / "set" / "models.c"),
    ):
        code, out, err = run_cli(capsys, *args, "-o", c_file, "--samples", samples)
        assert code == 0, out + err
        assert "parity: passed" in out, out
        strict_compile(c_file, c_file.parent)
        outputs.append(out)
    return outputs[0]


def user_module(tmp_path: Path, monkeypatch: Any, source: str) -> Any:
    """A module of the user's own, written to ``tmp_path`` (made the working directory) and imported,
    under a name unique to the test; ``forget_module`` makes the exporter import it again itself."""
    import importlib
    import textwrap

    name = "usermod_" + "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def forget_module(monkeypatch: Any, module: Any) -> str:
    """Drop ``module`` from sys.modules and its folder from sys.path (after pickling with it); its name."""
    import sys

    folder = str(Path(module.__file__).parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != folder])
    monkeypatch.delitem(sys.modules, module.__name__)
    return module.__name__


def header_values(folder: Path, header: str, arrays: str, values: str) -> list[str]:
    """What a C program including ``header`` (in ``folder``) prints of the int expressions ``values`` (comma
    separated), after declaring ``arrays`` (e.g. ``in[] = SYMBOL_INPUT_SHAPE``): a header's macros as C reads them."""
    program = folder / "main.c"
    n = values.count(",") + 1
    program.write_text(
        f'#include <stdio.h>\n#include "{header}"\nint main(void) {{\n    static const int {arrays};\n'
        f'    printf("{" ".join(["%d"] * n)}\\n", {values});\n    return 0;\n}}\n'
    )
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-o", folder / "main", program], check=True)
    return subprocess.run([folder / "main"], capture_output=True, text=True, check=True).stdout.split()
