"""One model spec and one pipeline: Python, the command line and a manifest all run ``export_spec``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporter import Checks, ExportError, ModelSpec, Outputs, export_spec
from exporter.check.reference_rows import parse_rows

from helpers import ROOT, run_cli

SCALER = ROOT / "examples" / "efficiency_tX.pkl"


def test_python_spec_runs_every_step(tmp_path):
    """A transformer on its own (no framework to load): C compiled, parity checked, every file written."""
    out = tmp_path / "out" / "tx.c"
    result = export_spec(ModelSpec(name="tx", model=SCALER), Outputs(out), Checks(samples=200))
    assert result.passed and set(result.reports) == {"tx"}
    assert result.reports["tx"].rows >= 200
    assert "tx_inverse" in out.with_suffix(".h").read_text()
    functions, rows = parse_rows(out.with_suffix(".ref.txt").read_text())
    assert set(functions) == {"tx", "tx_inverse"} and rows[0].symbol == "tx"
    assert "Parity: passed" in out.read_text()
    assert result.summary().startswith("lamarr-export") and "parity: passed" in result.summary()


def test_spec_rules_in_python_words(tmp_path):
    both = ModelSpec(model=SCALER, flax="m:M")
    with pytest.raises(ExportError, match=r"give exactly one of model .* or flax .*not both"):
        both.build()
    with pytest.raises(ExportError, match="noise goes with a generator model"):
        ModelSpec(model=SCALER, noise=2).build()
    with pytest.raises(ExportError, match=r"log_columns \[99\]: the chain takes"):
        export_spec(ModelSpec(model=SCALER, log_columns=[99]), Outputs(tmp_path / "x.c"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("manifest", [False, True])
def test_cli_and_manifest_share_the_pipeline(capsys, tmp_path, monkeypatch, manifest):
    """Both commands hand their spec to exporter.run.steps.export_spec (and print what it returns)."""
    import exporter.run.steps

    seen = []

    def recording(spec, outputs, checks, progress=None):
        seen.append((spec, outputs, checks))
        raise ExportError("stopped here")

    monkeypatch.setattr(exporter.run.steps, "export_spec", recording)
    model = SCALER
    if manifest:
        model = tmp_path / "set.toml"
        model.write_text(textwrap.dedent(f'[models.tx]\nmodel = "{SCALER}"\n'))
    code, _, err = run_cli(capsys, model, "-o", tmp_path / "x.c", "--samples", 7)
    assert code == 2 and "stopped here" in err
    (spec, outputs, checks) = seen[0]
    assert outputs.c == Path(tmp_path / "x.c") and checks.samples == 7
    assert spec.files() == [model, SCALER] if manifest else [SCALER]  # a manifest is read too
