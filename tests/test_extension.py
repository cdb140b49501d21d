"""The extension API's worked example, run from docs/custom-preprocessing.md itself, and its guard:
a wrong mapping fails parity."""

from __future__ import annotations

import re

import numpy as np
import pytest

from exporter.frontends.keras.layers import CUSTOM_LAYERS
from exporter.frontends.sklearn.transformers import REGISTERED

from helpers import ROOT, strict_compile

PAGE = ROOT / "docs" / "custom-preprocessing.md"


def worked_example() -> str:
    """The page's one Python block: the example exactly as a reader copies it."""
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    return code


@pytest.fixture
def registries():
    """Registries restored afterwards: registrations are global."""
    with CUSTOM_LAYERS.restored(), REGISTERED.restored():
        yield


def test_worked_example_runs(registries, keras, capsys, tmp_path):
    namespace: dict = {"__name__": "worked_example"}
    exec(compile(worked_example(), str(PAGE), "exec"), namespace)
    ex = namespace["ex"]
    kinds = [op.describe() for op in ex.chain.pre.ops] + [op.describe() for op in ex.chain.net.ops]
    assert any(k.startswith("mix 3 columns") for k in kinds), kinds
    assert any(k.startswith("Formula y = (x / (1.0 + exp((-x))))") for k in kinds), kinds
    assert "Affine 8" in kinds
    assert "passed" in capsys.readouterr().out
    (tmp_path / "whitened.c").write_text(ex.source.c)
    strict_compile(tmp_path / "whitened.c", tmp_path)  # the Mix and Formula C under Lamarr's strict flags


def test_a_wrong_mapping_fails_parity(registries, keras):
    code = worked_example().replace("{x} / (1 + exp(-{x}))", "{x} / (1 + exp(-2 * {x}))")
    code = code.replace("assert report.passed, report.table()", "")
    namespace: dict = {"__name__": "worked_example"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    assert not namespace["report"].passed


def test_refusal_from_a_mapping_names_the_step(registries, keras):
    from exporter.common.errors import ExportError

    namespace: dict = {"__name__": "worked_example"}
    code = worked_example().split("rng = np.random")[0]
    exec(compile(code, str(PAGE), "exec"), namespace)
    est = namespace["Whitening"]().fit(np.random.default_rng(0).normal(size=(50, 3)))
    est.w_ = np.eye(2)
    with pytest.raises(ExportError, match=r"step 'Whitening' \(Whitening\): w_ is \(2, 2\), the step receives 3"):
        namespace["exporter"].export_transformer(est)


def test_register_layer_refuses_a_bad_expression_at_once():
    import exporter
    from exporter.ir.expression import ExpressionError

    with pytest.raises(ExpressionError, match="';'"):
        exporter.register_layer("Evil", c_expression="{x}; system(0)")
    assert "Evil" not in CUSTOM_LAYERS
