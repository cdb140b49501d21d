"""Symbols that are names the generated code uses itself: each refused by name, or compiled strictly.

The exported function is declared at file scope; the templates' locals, parameters, macro parameters
and attribute words are spelled without the symbol's prefix. A symbol equal to one of them (``-o n.c``:
``n_batch(..., size_t n)`` calls ``n``) made C that does not compile. Every kind of template is
rendered here (the every-op network, a chain with each kind of column step and scikinC's names, a tree
model, a model set with a generator and a pipeline), every identifier the C spells unprefixed is taken
as a symbol, and each must be refused (exit 2, naming it) or compile under the strict flags. The one
list the refusal comes from, ``naming.GENERATED_NAMES``, is checked against that C and the templates.
"""

from __future__ import annotations

import bisect
import itertools
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from exporter.api import export_chain, export_keras
from exporter.backend import CSource, render, render_pipeline, render_set
from exporter.backend.naming import (
    C_KEYWORDS,
    CPP_KEYWORDS,
    GENERATED_NAMES,
    LIBRARY_NAMES,
    MATH_NAMES,
    check_symbol,
    clash,
    shared_name,
)
from exporter.common.errors import InputError
from exporter.common.options import Options
from exporter.common.progress import Progress
from exporter.sets.manifest import ModelSet, read_manifest
from exporter.sets.pipelines import PipelineExport

from helpers import ROOT, STRICT_C, every_op, residual_model, run_cli, saved, small_model_set

EXAMPLE = ROOT / "examples" / "efficiency.keras"
Renderer = Callable[[str, int], CSource]  # (symbol, index unique to the symbol) -> one translation unit

# identifiers (and numbers, comments, strings and preprocessor lines, skipped) of C text
_TOKEN = re.compile(
    r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\])*\"|^\s*#\s*include[^\n]*|#\s*\w+|\.?\d(?:[eEpP][-+]|[\w.])*|\w+", re.S | re.M
)
_JINJA = re.compile(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", re.S)


def identifiers(c: str) -> set[str]:
    return {t for t in _TOKEN.findall(c) if t[0].isalpha() or t[0] == "_"}


class FastQuantileLayer:  # scikinC's class, recognised by its name and fitted attributes
    class Grid:
        def __init__(self, lo: float, hi: float):
            self.x_min, self.x_max, self.y_values = lo, hi, np.linspace(0.0, 1.0, 9)

    def __init__(self, width: int):
        self.fwdTransforms_ = [self.Grid(-3.0, 3.0)] * width
        self.bwdTransforms_ = [self.Grid(0.0, 1.0)] * width


def _chain(keras):
    """A network after every kind of column step (standardize, clip, quantile, power, log, fixed bins, a
    decorrelation, a formula, a polynomial expansion, a column layout) and before a quantile target transform."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import (
        FunctionTransformer,
        MinMaxScaler,
        PolynomialFeatures,
        PowerTransformer,
        QuantileTransformer,
        StandardScaler,
    )

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from lamarr_utils import DecorrTransformer
    finally:
        sys.path.remove(str(ROOT / "examples"))
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=300), np.exp(rng.normal(size=300)), rng.normal(size=300) * 3]
    formula = FunctionTransformer(np.tanh, np.arctanh)
    formula.func_inC = "tanh({x}) + 0.5 * {x}"
    columns = ColumnTransformer(
        [
            ("q", QuantileTransformer(n_quantiles=20, output_distribution="normal"), [0]),
            ("p", PowerTransformer(), [1]),
            ("m", MinMaxScaler(clip=True), [2]),
        ]
    ).fit(x)
    pre = [
        columns,
        FastQuantileLayer(3),
        PowerTransformer(method="box-cox").fit(np.exp(x)),
        StandardScaler().fit(x),
        DecorrTransformer().fit(x),
        FunctionTransformer(np.log1p, np.expm1),
        formula,
        PolynomialFeatures(2).fit(x),
    ]
    inputs = keras.Input((10,))
    net = keras.Model(inputs, keras.layers.Dense(2, activation="tanh")(inputs))
    target = QuantileTransformer(n_quantiles=20).fit(rng.gamma(2.0, size=(300, 2)))
    return export_chain(net, preprocess=pre, target_transform=target, name="probe", scikinc_names=True)


def _grids(keras):
    """A volume's convolution and a strided transposed convolution: the grid templates' locals per spatial axis
    (``id``, ``ih``, ``tih``...), which the every-op network's sequences do not spell."""
    L = keras.layers
    x = keras.Input((3, 4, 5, 2))
    y = L.Conv3D(2, 2, padding="same")(x)
    y = L.Conv2DTranspose(2, 2, strides=2)(L.Reshape((12, 5, 2))(y))
    return keras.Model(x, L.Flatten()(y))


def _tree():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.random.default_rng(1).normal(size=(200, 3))
    return export_chain(HistGradientBoostingClassifier(max_iter=3).fit(x, (x[:, 0] > 0) + (x[:, 1] > 0)), name="tree")


PIPELINE = """
[pipelines.both]
n_inputs = 3
scikinc_names = true
stages = [{ model = "cls", reads = ["input"] }, { model = "gen", reads = ["cls[0:3]"], noise = 4 }]
"""


def _model_set(keras, folder: Path) -> list:
    """``small_model_set`` (a generator, a classifier, their transformers) and a pipeline of both, exported."""
    manifest = small_model_set(keras, folder) / "models.toml"
    manifest.write_text(manifest.read_text() + textwrap.dedent(PIPELINE))
    return ModelSet("set", manifest, read_manifest(manifest)).exports(Progress(enabled=False))


def _set_renderer(exports: list, renamed: str) -> Renderer:
    """The model set with ``renamed`` (a model, or the pipeline) under the symbol; the others get names of their own."""

    def rendered(symbol: str, index: int) -> CSource:
        names = {ex.symbol: symbol if ex.symbol == renamed else f"{ex.symbol}{index}" for ex in exports}
        parts = []
        for ex in exports:
            if isinstance(ex, PipelineExport):
                p = ex.pipeline
                stages = [
                    replace(
                        s, name=names[s.name], reads=[replace(r, source=names.get(r.source, r.source)) for r in s.reads]
                    )
                    for s in p.stages
                ]
                output = [replace(r, source=names[r.source]) for r in p.output]
                parts.append(render_pipeline(replace(p, name=names[p.name], stages=stages, output=output)))
            else:
                parts.append(render(ex.chain, names[ex.symbol], "", ex.options, ex.scikinc_names))
        return render_set(f"set{index}", "models.toml", parts)

    return rendered


@pytest.fixture(scope="module")
def kinds(keras, tmp_path_factory) -> dict[str, Renderer]:
    """Every kind of template, rendered under any symbol."""
    net = export_keras(every_op(keras), name="probe")
    wide = export_keras(residual_model(keras), name="probe")  # AVX-512's loops over chunks of columns
    chain, tree = _chain(keras), _tree()
    grids = export_keras(_grids(keras), name="probe")
    exports = _model_set(keras, tmp_path_factory.mktemp("set"))
    return {
        "every-op network": lambda s, i: render(net.chain, s),
        "every-op network in double": lambda s, i: render(net.chain, s, options=Options(math="libm", dtype="double")),
        "residual network": lambda s, i: render(wide.chain, s),
        "convolutions over grids": lambda s, i: render(grids.chain, s),
        "chain": lambda s, i: render(chain.chain, s, scikinc=True),
        "tree model": lambda s, i: render(tree.chain, s),
        "model set, the generator": _set_renderer(exports, "gen"),
        "model set, the pipeline": _set_renderer(exports, "both"),
    }


def _unprefixed(kinds: dict[str, Renderer]) -> set[str]:
    """Every identifier the C of every kind spells without its own symbol's prefix (nor a set's other symbols')."""
    found: set[str] = set()
    for render_as in kinds.values():
        source = render_as("probe", 0)
        own = ("probe", "cls0", "gen0", "both0")  # the set's guards (PROBE_H_INCLUDED...) are tried, and refused
        found |= {name for name in identifiers(source.c + source.h) if not name.startswith(own)}
    return found


def _compile(sources: dict[str, str], folder: Path, name: str) -> dict[str, list[str]]:
    """``sources`` (symbol -> its C) compiled as one file under the strict flags, without optimization or
    linking (names are all this checks): the errors, by the symbol whose text they are in."""
    folder.mkdir(parents=True, exist_ok=True)
    c_file = folder / name
    c_file.write_text("".join(sources.values()))
    starts = list(itertools.accumulate((text.count("\n") for text in sources.values()), initial=1))
    flags = [f for f in STRICT_C if f not in ("-O3", "-shared", "-fPIC")]
    command = [*flags, "-O0", "-c", str(c_file), "-o", str(c_file.with_suffix(".o"))]
    result = subprocess.run(command, capture_output=True, text=True)
    errors: dict[str, list[str]] = {}
    for line, message in re.findall(rf"{re.escape(name)}:(\d+):\d+: error: ([^\n]*)", result.stderr):
        symbol = list(sources)[min(bisect.bisect_right(starts, int(line)) - 1, len(sources) - 1)]
        errors.setdefault(symbol, []).append(message)
    assert errors or not result.returncode, result.stderr[:3000]
    return errors


def test_every_name_the_generated_code_uses_is_refused_or_compiles(capsys, kinds, tmp_path):
    names = sorted(_unprefixed(kinds))
    refused, accepted = [], ["probe"]  # the probe: the compile itself is shown to work
    for name in names:
        try:
            check_symbol(name)
            accepted.append(name)
        except InputError as err:
            assert repr(name) in str(err)
            refused.append(name)
    # refused as the command line's --name: exit 2, naming the symbol (checked before any model is read)
    for name in refused:
        code, _, err = run_cli(capsys, EXAMPLE, "--name", name, "-o", tmp_path / "m.c")
        assert code == 2 and repr(name) in err and "Traceback" not in err, (name, err)
    # the others compile: each kind under all of them in one file (C headers in another), 14 compiles in all
    failed = {}
    for kind, render_as in kinds.items():
        try:
            sources = {name: render_as(name, i) for i, name in enumerate(accepted)}
        except Exception as err:  # a name the IR itself mistakes (a pipeline stage called input)
            failed[kind] = repr(err)
            continue
        for part in ("c", "h"):
            texts = {name: getattr(source, part) for name, source in sources.items()}
            errors = _compile(texts, tmp_path / re.sub(r"\W+", "_", kind), f"all.{part}.c")
            failed.update({f"{kind} ({part}) as {symbol}": messages[:3] for symbol, messages in errors.items()})
    symbols = sorted({key.rpartition(" as ")[2] for key in failed})
    assert not failed, f"{len(symbols)} symbols do not compile: {symbols}\n" + "\n".join(
        f"{k}: {v}" for k, v in failed.items()
    )


def test_the_declared_list_covers_what_the_templates_spell_unprefixed(kinds):
    """Every identifier of the rendered C and of the templates' own text (outside Jinja tags), not a keyword
    nor a library's name nor the symbol's, is in ``GENERATED_NAMES``: a template that names a new local must
    declare it there, which refuses it as a symbol."""
    known = C_KEYWORDS | CPP_KEYWORDS | MATH_NAMES | LIBRARY_NAMES | GENERATED_NAMES
    in_templates = set()
    for template in (ROOT / "templates").rglob("*.j2"):
        text = _JINJA.sub("@", template.read_text())  # what Jinja prints becomes @: `@_kernel` is the symbol's
        tokens = (m for m in _TOKEN.finditer(text) if m.group()[0].isalpha() or m.group()[0] == "_")
        in_templates |= {m.group() for m in tokens if text[m.start() - 1] != "@"}
    unknown = sorted(n for n in _unprefixed(kinds) | in_templates if n not in known and clash(n) is None)
    assert not unknown, f"used unprefixed by the generated code but not in naming.GENERATED_NAMES: {unknown}"
    unused = sorted(GENERATED_NAMES - _unprefixed(kinds) - in_templates)
    assert not unused, f"in naming.GENERATED_NAMES but no template uses them: {unused}"


def test_a_file_stem_that_is_such_a_name_gets_a_suffix(capsys, keras, tmp_path):
    """The bug as reported: ``-o n.c`` with a preprocessing step; the function is ``n_model``, in ``n.c``."""
    import pickle

    from sklearn.preprocessing import StandardScaler

    x = keras.Input((3,))
    model = saved(keras.Model(x, keras.layers.Dense(2)(x)), tmp_path, "net.keras")
    scaler = StandardScaler().fit(np.random.default_rng(0).normal(size=(100, 3)))
    (tmp_path / "tX.pkl").write_bytes(pickle.dumps(scaler))
    args = [model, "--preprocess", tmp_path / "tX.pkl", "-o", tmp_path / "n.c", "--samples", 50, "--dispatch", "none"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and "parity: passed" in out, out + err
    assert "float *n_model(float *output, const float *input);" in (tmp_path / "n.h").read_text()


def test_a_manifest_model_or_pipeline_named_so_is_refused(capsys, tmp_path):
    pipeline = (
        '[models.ok]\nmodel = "{}"\n\n[pipelines.k]\nn_inputs = 7\nstages = [{{ model = "ok", reads = ["input"] }}]\n'
    )
    for name, text in (("n", '[models.n]\nmodel = "{}"\n'), ("k", pipeline)):
        manifest = tmp_path / f"{name}.toml"
        manifest.write_text(text.format(EXAMPLE))
        code, _, err = run_cli(capsys, manifest, "-o", tmp_path / "set.c")
        assert code == 2 and f"'{name}'" in err and "variables, parameters" in err, err


def test_a_manifest_symbol_that_is_a_name_of_another_models_code_is_refused(capsys, keras, tmp_path):
    """``cls_max`` beside ``cls`` (whose max helper it is) is refused, naming both; ``cls_other`` would not be."""
    manifest = small_model_set(keras, tmp_path) / "models.toml"
    manifest.write_text(manifest.read_text() + '\n[models.cls_max]\nmodel = "nets/cls.keras"\n')
    code, _, err = run_cli(capsys, manifest, "-o", tmp_path / "set.c", "--no-check", "--dispatch", "none")
    assert code == 2 and "'cls_max' is also a name the C code of cls uses" in err, err
    assert not list(tmp_path.glob("set.*"))
    code_of_cls = "/* from cls_other.keras */ static float cls_max(float a, float b);"
    assert shared_name({"cls": code_of_cls, "cls_other": ""}, {}) is None  # named in a comment only
    assert shared_name({"cls": code_of_cls, "cls_max": ""}, {}) == ("cls_max", "cls")
    assert shared_name({"p": "p_stage(output, input);", "p_stage": ""}, {"p": ["p_stage"]}) is None  # its stage
