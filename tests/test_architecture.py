"""The architecture stays as docs/architecture.md draws it: one place per op, activation and transformer.

Counts the source files (exporter/ and templates/) that name an activation or a transformer, checks
they are among the places the "How to add" section lists, that no module grows past 400 lines, that
the helpers each op asks for are exactly those its rendered C calls (the backend asks the op, and
names none), and that the safe loader allows what the transformer registry maps.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import numpy as np
import pytest

from exporter.backend import render
from exporter.backend.mathlib import HELPERS
from exporter.backend.templates import environment
from exporter.common.options import Options
from exporter.ir import Activate, Activation, Affine, Dense, Graph, LayerNorm, Merge, PReLU
from exporter.ir.activations import KINDS
from exporter.ir.chain import Chain
from exporter.ir.columns import ColumnStage, Function, MulAdd, Quantile

from helpers import ROOT

SOURCES = [p for folder in ("exporter", "templates") for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".j2")]
MAX_LINES = 400


def naming(word: str) -> set[str]:
    """The source files naming ``word`` as a whole word (``softplus``, not ``softplus_tail``)."""
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    return {str(p.relative_to(ROOT)) for p in SOURCES if pattern.search(p.read_text())}


def listed(section: str) -> set[str]:
    """The files a "How to add" section of docs/architecture.md names."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"`((?:exporter|templates|tests)/[\w/<>.]+\.\w+)`", body))


RECIPES = (
    "An activation",
    "A scikit-learn transformer",
    "A column op",
    "An IR op (a network layer)",
    "A Keras layer",
    "A Flax op (a JAX primitive)",
    "A tree format",
    "A tree layout",
    "An ONNX op",
)


def test_listed_places_exist():
    for section in RECIPES:
        places = listed(section)
        assert places, section
        for place in places:
            matches = list(ROOT.glob(re.sub(r"<\w+>", "*", place)))
            assert matches, f"{section}: {place} does not exist"


@pytest.mark.parametrize("kind", ["softplus", "mish", "hard_silu"])
def test_an_activation_lives_in_at_most_4_files(kind):
    files = naming(kind)
    assert len(files) <= 4, files
    assert files <= listed("An activation"), files - listed("An activation")


@pytest.mark.parametrize("cls", ["MinMaxScaler", "StandardScaler", "RobustScaler", "MaxAbsScaler"])
def test_a_transformer_lives_in_at_most_2_files(cls):
    files = naming(cls)
    allowed = {p for p in listed("A scikit-learn transformer") if p.startswith("exporter/")}
    templates = {p for p in files if p.startswith("templates/columns/")}
    assert len(files) <= 2, files
    assert files - templates <= allowed, files


@pytest.mark.parametrize("layer", ["ELU", "GaussianNoise"])
def test_a_keras_layer_is_declared_in_one_file(layer):
    """A Keras layer class is named in its declaration alone: its variables, shapes and mapping."""
    files = naming(layer)
    assert len(files) == 1 and files <= listed("A Keras layer"), files


@pytest.mark.parametrize("op_type", ["Gemm", "PRelu", "Unsqueeze"])
def test_an_onnx_op_is_declared_in_one_file(op_type):
    files = naming(op_type)
    assert len(files) == 1 and files <= listed("An ONNX op"), files


@pytest.mark.parametrize("cls", ["ExtraTreesRegressor", "HistGradientBoostingRegressor"])
def test_a_tree_family_lives_where_the_recipe_says(cls):
    assert naming(cls) <= listed("A tree format"), naming(cls)


def _holds_code(path):
    """A package's ``__init__.py`` that is only its docstring is the folder's label, not a module to name."""
    body = ast.parse(path.read_text()).body
    return path.name != "__init__.py" or any(
        not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body
    )


def test_every_module_is_named_in_the_architecture():
    """docs/architecture.md's module tables name every module of the package, and nothing that is gone."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`(exporter/[\w/]+\.py)`", text.split("## How to add", 1)[0]))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "exporter").rglob("*.py") if _holds_code(p)}
    assert modules - named == set(), f"modules docs/architecture.md does not name: {sorted(modules - named)}"
    assert named - modules == set(), f"docs/architecture.md names modules that do not exist: {sorted(named - modules)}"


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "exporter").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_helper_calls_are_declared():
    """mathlib.HELPERS states which helpers each helper calls: exactly what math.c.j2 writes."""
    math = environment().get_template("math.c.j2").module
    calls = re.compile(rf"\bS_({'|'.join(HELPERS)})\(")
    for name, declared in HELPERS.items():
        written = set(calls.findall(str(math.helper(name, "S", "float")))) - {name}
        assert written == set(declared), name


def _graph(op_of) -> Graph:
    return Graph("x", "y", {"x": 3, "y": 3}, [op_of("x", "y")], "t")


def _example(kind: str) -> Activation:
    params = {"negative_slope": 0.1, "max_value": 6.0, "threshold": 0.5, "alpha": 0.7, "exponent": 3.0, "b": 4.0}
    params |= {"default_value": -1.0, "low": -1.0, "high": 2.0, "nan": 0.0, "posinf": 9.0, "neginf": -9.0}
    return Activation(kind, {p: params[p] for p in KINDS[kind].params})


CASES = {
    **{f"activation {k}": (lambda x, y, k=k: Activate(k, (x,), y, 3, _example(k))) for k in KINDS},
    "relu_general unbounded": lambda x, y: Activate(
        "r", (x,), y, 3, Activation("relu_general", {"negative_slope": 0.0, "max_value": float("inf"), "threshold": 0})
    ),
    "maximum": lambda x, y: Merge("m", (x, x), y, 3, "maximum"),
    "minimum": lambda x, y: Merge("m", (x, x), y, 3, "minimum"),
    "prelu": lambda x, y: PReLU("p", (x,), y, 3, alpha=[0.1, 0.2, 0.3]),
    "layernorm": lambda x, y: LayerNorm("l", (x,), y, 3, scale=[1.0, 2.0, 3.0], bias=[0.0, 0.1, 0.2]),
}


@pytest.mark.parametrize("math", ["fast", "libm"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_helpers_come_from_the_ir(case, math):
    """The helpers emitted (chosen from the ops) are exactly those the rendered C calls: a missing one
    is called but not defined, an unneeded one defined but called by nothing."""
    c = render(_graph(CASES[case]), "m", options=Options(math=math)).c
    definition = re.compile(rf"m_INLINE \w+ m_({'|'.join(HELPERS)})\(")
    defined = set(definition.findall(c))
    called = set(re.findall(rf"\bm_({'|'.join(HELPERS)})\(", definition.sub("", c)))
    assert called == defined, case


BARRIERS = ("KEEP_SUMS", "OPAQUE")  # the macros of templates/ops/helpers.c.j2 (``barriers``)


@pytest.mark.parametrize(
    "case",
    {
        **CASES,
        "dense": lambda x, y: Dense("d", (x,), y, 3, np.ones((3, 3), np.float32)),
        "affine": lambda x, y: Affine("a", (x,), y, 3, np.ones(3), np.zeros(3)),
    }.items(),
    ids=lambda case: case[0],
)
def test_op_file_helpers_come_from_the_ir(case):
    """A file defines the barrier macros exactly when one of its ops says it uses them (``file_helpers``), and
    an op whose C uses them says so."""
    name, op_of = case
    graph = _graph(op_of)
    c = render(graph, "m").c
    defined = {macro for macro in BARRIERS if f"#define m_{macro}(" in c}
    used = {macro for macro in BARRIERS if re.search(rf"(?<!define )\bm_{macro}\(", c)}
    declared = "barriers" in graph.ops[0].file_helpers()
    assert defined == (set(BARRIERS) if declared else set()), name
    assert used <= defined, name


def _quantile(normal: bool, inverse: bool) -> Quantile:
    quantiles = np.sort(np.random.default_rng(0).normal(size=(10, 2)), axis=0)
    return Quantile("q", (0, 1), quantiles, np.linspace(0.0, 1.0, 10), normal, inverse)


@pytest.mark.parametrize("normal", [False, True])
@pytest.mark.parametrize("inverse", [False, True])
def test_column_helpers_come_from_the_ir(normal, inverse):
    """The column helper functions a file defines are exactly those its C calls: a missing one is called but not
    defined, an unneeded one defined but called by nothing. A step without inverse keeps the file to the one
    direction (a transformer's inverse would be rendered too)."""
    stage = ColumnStage(2, [_quantile(normal, inverse), Function("f", (0,), "exp")])
    c = render(Chain(pre=stage, source="t"), "m").c
    names = "interp|ndtr|ndtri"
    definition = re.compile(rf"static double m_({names})\(")
    defined = set(definition.findall(c))
    called = set(re.findall(rf"\bm_({names})\(", definition.sub("", c)))
    assert called == defined
    assert defined == {"interp", *([("ndtr" if inverse else "ndtri")] if normal else [])}


def test_a_new_op_class_gets_the_helpers_it_declares():
    """An op class the backend has never heard of, declaring helpers, gets them defined in the file: render()
    asks each op (``helpers``, ``file_helpers``) and names no op class."""

    @dataclass
    class Bounded(Activate):  # an elementwise op whose C would call min() and read weights through OPAQUE
        def helpers(self, math: str) -> tuple[str, ...]:
            return ("min",)

        def file_helpers(self) -> tuple[str, ...]:
            return ("barriers",)

    @dataclass
    class Tabulated(MulAdd):  # a column op whose C would call the normal CDF
        def file_helpers(self) -> tuple[str, ...]:
            return ("ndtr",)

    net = _graph(lambda x, y: Bounded("b", (x,), y, 3, Activation("linear")))
    plain = _graph(lambda x, y: Activate("b", (x,), y, 3, Activation("linear")))
    assert re.search(r"m_INLINE float m_min\(", render(net, "m").c)
    assert "#define m_OPAQUE(p)" in render(net, "m").c
    assert "m_min(" not in render(plain, "m").c and "m_OPAQUE" not in render(plain, "m").c
    columns = Chain(pre=ColumnStage(2, [Tabulated("t", (0, 1), 2.0, 1.0)]), source="t")
    plain_columns = Chain(pre=ColumnStage(2, [MulAdd("t", (0, 1), 2.0, 1.0)]), source="t")
    assert "static double m_ndtr(double a)" in render(columns, "m").c
    assert "m_ndtr" not in render(plain_columns, "m").c


def test_safe_loader_allows_what_the_registry_maps():
    import importlib

    from exporter.frontends.sklearn.safe_load import allowed
    from exporter.frontends.sklearn.transformers import IMPORT_PATHS, TRANSFORMERS

    assert {p.rpartition(".")[2] for p in IMPORT_PATHS} == set(TRANSFORMERS.names())
    for path in IMPORT_PATHS:
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert name in allowed()[cls.__module__], path
