"""generated/ holds the exports of the shipped examples; they must be what the exporter makes today."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from exporter.check.reference_rows import parse_rows
from exporter.cli import main

from helpers import ROOT

pytestmark = pytest.mark.slow

spec = importlib.util.spec_from_file_location("regenerate", ROOT / "examples" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


@pytest.mark.parametrize("name", sorted(regenerate.EXPORTS))
def test_generated_files_are_current(tmp_path, capsys, name):
    assert main(regenerate.arguments(name, tmp_path)) == 0
    cards = [".plugins.json"] if (tmp_path / f"{name}.plugins.json").exists() else []  # a manifest's
    assert bool(cards) == (ROOT / "generated" / f"{name}.plugins.json").exists()
    for suffix in (".c", ".h", *cards):
        committed = (ROOT / "generated" / f"{name}{suffix}").read_bytes()
        assert (tmp_path / f"{name}{suffix}").read_bytes() == committed, (
            f"generated/{name}{suffix} is stale: run python examples/regenerate.py"
        )
    # The reference rows hold the frameworks' outputs, which may differ in the last bits between CPUs
    # (TensorFlow picks its kernels per machine): the inputs and noise must match exactly, the outputs within
    # the tolerance the file states.
    fresh_functions, fresh = parse_rows((tmp_path / f"{name}.ref.txt").read_text())
    functions, rows = parse_rows((ROOT / "generated" / f"{name}.ref.txt").read_text())
    assert fresh_functions == functions and [r.symbol for r in fresh] == [r.symbol for r in rows]
    for new, old in zip(fresh, rows, strict=True):
        np.testing.assert_array_equal(new.inputs, old.inputs)
        np.testing.assert_array_equal(
            new.noise if new.noise is not None else [], old.noise if old.noise is not None else []
        )
        np.testing.assert_allclose(new.outputs, old.outputs, atol=old.atol, rtol=old.rtol)
