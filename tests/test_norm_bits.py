"""After a normalization, SYMBOL_batch gives the bits of one call per row, in every instruction-set variant.

An op that computes in double stores its output rounded to float; the next op that widens it back to double
must see that float. GCC 12 (-O2 and above) vectorizes both conversions of one row's code into vector ones
(its SLP vectorizer) and then folds the pair ``(double)(float)d`` to ``d``: the rounding is lost, in whichever
code (one row, a block of rows, a variant) it vectorizes so. The tensor fuzz test found
``Input((2,)) -> LayerNormalization -> UnitNormalization``: 1 ULP apart in a third of the rows, in all three
variants. Every op that widens its inputs (``Op.widens``) now reads what an earlier op stored through a pointer
the compiler cannot see through (``exporter.backend.buffers.stored_reads``): a load of the float in memory.
Exact comparisons, with GCC and Clang, every variant this CPU runs (``exporter.check.batch_bits``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import exporter.ir
from exporter.ir import Op

from helpers import assert_same_bits_everywhere, models_in_one_file, randomize

WIDTHS = (1, 2, 3, 5, 7, 9)


CHAINS = {
    "ln_un": ("LayerNormalization", "UnitNormalization"),  # at width 2: the tensor fuzz test's finding
    "un_un": ("UnitNormalization", "UnitNormalization"),
    "un_ln_un": ("UnitNormalization", "LayerNormalization", "UnitNormalization"),
    "gn_rms_bn": ("GroupNormalization", "RMSNormalization", "BatchNormalization"),
    "rms_ln_bn": ("RMSNormalization", "LayerNormalization", "BatchNormalization"),
}


def norm_chains(keras) -> list:
    """Chains of normalizations (layer, unit, group, RMS, then a batch norm) at widths 1 to 9, a model each."""
    models = []
    for name, chain in CHAINS.items():
        for w in WIDTHS:
            x = keras.Input((w,))
            h = x
            for layer in chain:
                h = getattr(keras.layers, layer)(**({"groups": 3 if w % 3 == 0 else 1} if layer[0] == "G" else {}))(h)
            models.append((f"{name}{w}", randomize(keras.Model(x, h))))
    return models


@pytest.fixture(scope="module")
def norms(keras):
    """Every chain at every width in one C file: one build per compiler."""
    return models_in_one_file("norms", norm_chains(keras))


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_chains_of_normalizations_give_the_same_bits_in_a_batch(norms, tmp_path, monkeypatch, compiler):
    assert len(norms.networks) == len(CHAINS) * len(WIDTHS)
    assert_same_bits_everywhere(norms, tmp_path, monkeypatch, compiler)


def every_op_class(cls: type = Op) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *every_op_class(sub))]


def test_every_op_whose_template_widens_its_inputs_says_so():
    """By construction: a template that reads ``(double)`` of an input belongs to an op declaring ``widens``,
    which the backend then has read through opaque pointers; no op declares it without reading so."""
    for module in (
        "attention",
        "layout",
        "normalization",
        "products",
        "recurrent",
        "convolution",
        "resize",
        "transposed",
        "trees",
    ):
        importlib.import_module(f"exporter.ir.{module}")
    templates = Path(exporter.ir.__file__).parents[2] / "templates" / "ops"
    widening = re.compile(r"\(double\)\s*\{\{\s*s\.x\(")
    classes = [c for c in every_op_class() if c.template]
    assert len(classes) > 20
    for c in classes:
        reads_double = bool(widening.search((templates / f"{c.template}.c.j2").read_text()))
        assert c.widens == reads_double, f"{c.__name__} ({c.template}.c.j2): widens={c.widens}"
