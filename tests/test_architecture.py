"""The architecture stays as docs/architecture.md draws it: one place per op, activation and transformer.

Counts the source files (exporter/ and templates/) that name an activation or a transformer, checks
they are among the places the "How to add" section lists, that no module grows past 400 lines, that
the math helpers each op asks for are exactly those its rendered C calls, and that the safe loader
allows what the transformer registry maps.
"""

from __future__ import annotations

import re

import pytest

from exporter.backend import render
from exporter.backend.mathlib import HELPERS
from exporter.backend.templates import environment
from exporter.common.options import Options
from exporter.ir import Activate, Activation, Graph, Merge, PReLU
from exporter.ir.activations import KINDS

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


def test_listed_places_exist():
    for section in ("An activation", "A scikit-learn transformer", "A column op", "An IR op (a network layer)"):
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
    params = {"negative_slope": 0.1, "max_value": 6.0, "threshold": 0.5, "alpha": 0.7, "exponent": 3.0}
    return Activation(kind, {p: params[p] for p in KINDS[kind].params})


CASES = {
    **{f"activation {k}": (lambda x, y, k=k: Activate(k, (x,), y, 3, _example(k))) for k in KINDS},
    "relu_general unbounded": lambda x, y: Activate(
        "r", (x,), y, 3, Activation("relu_general", {"negative_slope": 0.0, "max_value": float("inf"), "threshold": 0})
    ),
    "maximum": lambda x, y: Merge("m", (x, x), y, 3, "maximum"),
    "minimum": lambda x, y: Merge("m", (x, x), y, 3, "minimum"),
    "prelu": lambda x, y: PReLU("p", (x,), y, 3, alpha=[0.1, 0.2, 0.3]),
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


def test_safe_loader_allows_what_the_registry_maps():
    import importlib

    from exporter.frontends.sklearn.safe_load import allowed
    from exporter.frontends.sklearn.transformers import IMPORT_PATHS, TRANSFORMERS

    assert {p.rpartition(".")[2] for p in IMPORT_PATHS} == set(TRANSFORMERS)
    for path in IMPORT_PATHS:
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert name in allowed()[cls.__module__], path
