"""`lamarr-export inspect`: the chain as the exporter sees it, for exportable and refused models."""

from __future__ import annotations

import importlib.util
import json

from exporter.check.inspect import inspect_keras
from exporter.cli import main

from helpers import ROOT, refused_model, run_cli, saved

EXAMPLE = ROOT / "examples" / "efficiency.keras"
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "examples" / "regenerate.py")
REGENERATE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REGENERATE)


def table_lines(out: str) -> list[str]:
    """The printed rows of the inspect table: between its header and its total line."""
    lines = [line.strip() for line in out.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["step", "name", "op"]) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("total"))
    return lines[start:end]


def test_supported_model_table_and_totals(capsys):
    code, out, err = run_cli(capsys, "inspect", EXAMPLE)
    assert code == 0, err
    assert "12 inputs -> 4 outputs, 7 rows: the steps of the generated C" in out  # residual adds fused
    rows = [line.split() for line in table_lines(out)]
    assert [r[1] for r in rows] == ["hidden", *[f"residual_{i}+skip_{i}" for i in range(5)], "logits+probabilities"]
    assert rows[0][2:] == ["Dense", "12->128,", "tanh", "12", "128", "1,664", "3,200", "ok"]
    # the residual Add is fused into its Dense: 2 FLOPs per weight, 1 per tanh, 1 per element added
    assert rows[1][2:] == ["Dense", "128->128,", "tanh,", "+", "skip", "128+128", "128", "16,512", "33,024", "ok"]
    assert rows[6][2:] == ["Dense", "128->4,", "softmax", "128", "4", "516", "1,040", "ok"]
    # 2 FLOPs per weight of the kernels, 1 per tanh, 1 per element added, 4 per softmax element
    flops = 2 * (12 * 128 + 5 * 128 * 128 + 128 * 4) + 6 * 128 + 5 * 128 + 4 * 4
    assert (
        f"total: 84,740 parameters, 338,960 weight bytes, {flops:,} FLOPs per call, 1,536 stack bytes per call" in out
    )
    assert "exportable: yes" in out
    assert "reading efficiency.keras" in err  # progress on stderr, the table alone on stdout


def test_refused_in_stored_config_lists_every_layer(capsys, tmp_path, keras):
    """Refused before Keras loads the file: every stored layer, supported ones too, each with its status."""

    path = refused_model(keras, tmp_path, "odd.keras")
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 2
    assert "Traceback" not in err and "odd.keras: cannot export 3 layers" in err
    status = {line.split()[1]: line for line in table_lines(out)}
    assert list(status) == ["plus_one", "doubler", "fine_dense", "to_3d", "recurrent", "flat", "head"]
    assert all(status[ok].endswith(" ok") for ok in ("fine_dense", "to_3d", "flat", "head"))
    assert "REFUSED: runs arbitrary Python code" in status["plus_one"]
    assert "REFUSED: custom layer" in status["doubler"]
    assert "REFUSED: convolutional recurrent layers (ConvLSTM) are not supported" in status["recurrent"]
    assert "exportable: no, 3 layers refused" in out


def test_refused_on_the_built_model_keeps_the_chain(tmp_path, keras):
    """Problems only the walk sees: the partial chain, supported steps and refusals in place, all at once."""
    L = keras.layers
    x = keras.Input((4,))
    h = L.Dense(8, activation="relu", name="first")(x)
    h = L.Softmax(axis=0, name="wrong_axis")(h)
    h = L.Dense(3, name="middle")(h)
    model = keras.Model(x, [h, L.Dense(2, name="side")(x)], name="two_heads")
    inspection = inspect_keras(saved(model, tmp_path, "two.keras"))
    assert inspection.stage == "walk" and not inspection.exportable
    by_name = {row.name: row for row in inspection.rows}
    assert set(by_name) == {"two_heads", "first", "wrong_axis", "middle", "side"}
    assert by_name["wrong_axis"].problem == "axis 0; only the last axis (-1) is supported"
    assert (by_name["wrong_axis"].inputs, by_name["wrong_axis"].output) == ([8], 8)
    assert "2 outputs" in by_name["two_heads"].problem
    assert by_name["middle"].supported and (by_name["middle"].inputs, by_name["middle"].params) == ([8], 27)
    assert {p.layer for p in inspection.problems} == {"two_heads", "wrong_axis"}
    assert inspection.totals() == {
        "params": 40 + 27 + 10,
        "weight_bytes": 4 * 77,
        "flops": 64 + 8 + 48 + 16,
        "stack_bytes": None,
    }


def test_inspect_json_and_bad_name(capsys):
    code, out, err = run_cli(capsys, "inspect", EXAMPLE, "--name", "eff", "--json")
    assert code == 0 and err == "", err  # --json: no progress lines either
    document = json.loads(out)
    assert document["kind"] == "inspect" and document["symbol"] == "eff" and document["exportable"]
    assert document["totals"]["params"] == 84_740 and len(document["steps"]) == 7
    code, out, err = run_cli(capsys, "inspect", EXAMPLE, "--name", "float", "--json")
    assert code == 2 and "keyword" in json.loads(out)["error"] and "Traceback" not in err


def test_inspect_missing_file(capsys, tmp_path):
    code, out, err = run_cli(capsys, "inspect", tmp_path / "nope.keras")
    assert code == 2 and "nope.keras: no such model file" in err and out == ""


def test_inspect_a_chain_and_a_flax_model(capsys, tmp_path, monkeypatch):
    """Inspect reads what export reads: a network with its preprocessing, or a Flax module."""
    code = main(["inspect", str(EXAMPLE), "--preprocess", str(EXAMPLE.with_name("efficiency_tX.pkl")), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "efficiency_tX / quantile" in out and "hidden" in out
    monkeypatch.chdir(EXAMPLE.parent)
    module_flags = REGENERATE.FLAX_TRACKING[:8]  # --flax, --flax-kwargs, --params, --n-inputs: the network alone
    code = main(["inspect", *module_flags, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "Model/Dense_0+relu" in out and "Dense 128->1" in out
