"""Manifests: a model set in one .c/.h/.so, every model checked through its symbol; errors name entry and key."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import numpy as np
import pytest

from exporter.build.toolchain import CompiledModel
from exporter.check.reference_rows import parse_rows

from helpers import ROOT, assert_user_error, run_cli, small_model_set, strict_compile


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, keras):
    return small_model_set(keras, tmp_path_factory.mktemp("set"))


def test_manifest_exports_one_library(capsys, model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the manifest's folder, not here
    out_c = tmp_path / "out" / "set.c"
    code, out, err = run_cli(
        capsys, model_dir / "models.toml", "-o", out_c, "--so", tmp_path / "libset.so", "--samples", 500
    )
    assert code == 0, out + err
    assert "symbol gen: 3 inputs + 4 noise -> 2 outputs" in out and "symbol cls: 3 inputs -> 4 outputs" in out
    assert out.count("parity: passed") == 2
    header = out_c.with_suffix(".h").read_text()
    for declaration in (
        "float *gen(float *output, const float *input, const float *random);",
        "float *gen_dnn(float *output, const float *input, const float *random);",
        "float *gen_preprocess(float *output, const float *input);",
        "float *gen_postprocess(float *output, const float *input);",
        "float *cls(float *output, const float *input);",
        "float *cls_dnn(float *output, const float *input);",
    ):
        assert declaration in header
    strict_compile(out_c, tmp_path)
    symbols = subprocess.run(["nm", "-D", "--defined-only", tmp_path / "libset.so"], capture_output=True, text=True)
    for name in ("gen", "gen_dnn", "gen_preprocess", "gen_postprocess", "cls", "cls_preprocess", "cls_dnn"):
        assert f" {name}\n" in symbols.stdout

    functions, rows = parse_rows(out_c.with_suffix(".ref.txt").read_text())
    assert functions["gen"] == (3, 2, 4) and functions["cls_dnn"] == (3, 4, 0)
    assert [r.symbol for r in rows] == ["gen", "cls"]
    for r in rows:  # the written library reproduces the written reference rows
        n_noise = 0 if r.noise is None else r.noise.shape[1]
        fn = CompiledModel(r.symbol, tmp_path / "libset.so", r.inputs.shape[1], r.outputs.shape[1], n_noise=n_noise)
        np.testing.assert_allclose(fn(r.inputs, r.noise), r.outputs, atol=r.atol, rtol=r.rtol)
        np.testing.assert_allclose(fn.call_in_place(r.inputs, r.noise), r.outputs, atol=r.atol, rtol=r.rtol)
    assert np.allclose(rows[1].outputs.sum(axis=1), 1.0, atol=1e-6)  # softmax


def test_depends_lists_the_files(capsys, model_dir):
    code, out, _ = run_cli(capsys, model_dir / "models.toml", "--depends")
    assert code == 0
    listed = out.split()
    for name in ("nets/gen.keras", "nets/cls.keras", "tX.pkl", "tY.pkl"):
        assert str((model_dir / name).resolve()) in listed
    assert len(listed) == len(set(listed)) == 4  # tX.pkl, read by both models, listed once


def bad_manifest(folder, text):
    path = folder / "bad.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[models.aa]\nmodel = "nets/gen.keras"\nnosie = 4\n', ["[models.aa] nosie: unknown key"]),
        ('[models.aa]\nmodel = "nets/gen.keras"\nnoise = "4"\n', ["[models.aa] noise: expected an integer"]),
        ('[models.aa]\nmodel = "nets/missing.keras"\n', ["[models.aa] model:", "missing.keras: no such file"]),
        ('[models.aa]\nmodel = "nets/cls.keras"\npreprocess = "tX.pkl"\n', ["[models.aa] preprocess: expected a list"]),
        ('[models.aa]\nmodel = "nets/cls.keras"\nlog_columns = [1.5]\n', ["[models.aa] log_columns: expected a list"]),
        ('[models.aa]\nmodel = "nets/cls.keras"\noutput_activation = "relu"\n', ["[models.aa] output_activation"]),
        ('[models.aa]\npreprocess = ["tX.pkl"]\n', ["[models.aa] model: give the model to export: model"]),
        ('[models.int]\nmodel = "nets/cls.keras"\n', ["[models.int]", "int"]),
        ('[models.aa]\nmodel = "nets/cls.keras"\nlog_columns = [7]\n', ["[models.aa] log_columns: [7]"]),
        ('[models.aa]\nmodel = "nets/gen.keras"\nnoise = 3\n', ["[models.aa]", "noise = 3, but"]),
        ('[models.aa]\nflax = "m:M"\nflax_kwargs = "{"\n', ["[models.aa] flax_kwargs: not valid JSON"]),
        ('[models.aa]\nmodel = "nets/cls.keras"\nparams = "tX.pkl"\n', ["[models.aa] params: flax_kwargs, params"]),
        ("[models.a\n", ["bad.toml: not valid TOML"]),
        ("title = 'x'\n", ["title: unknown top-level key"]),
        ("", ["no models"]),
    ],
)
def test_manifest_errors(capsys, model_dir, tmp_path, text, fragments):
    path = bad_manifest(model_dir, text)
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "x.c"], "bad.toml", *fragments)


def test_manifest_refuses_per_model_flags(capsys, model_dir, tmp_path):
    manifest = model_dir / "models.toml"
    assert_user_error(capsys, tmp_path, [manifest, "--noise", 3, "-o", tmp_path / "x.c"], "--noise (a manifest key)")
    assert_user_error(capsys, tmp_path, [manifest, "--name", "x", "-o", tmp_path / "x.c"], "--name")
    assert_user_error(capsys, tmp_path, [model_dir / "nets" / "cls.keras", "--depends"], "--depends lists the files")


def test_same_function_twice_is_refused(capsys, model_dir, tmp_path):
    text = '[models.aa]\nmodel = "nets/cls.keras"\npreprocess = ["tX.pkl"]\n\n'
    text += '[models.aa_dnn]\nmodel = "nets/cls.keras"\n'
    assert_user_error(capsys, tmp_path, [bad_manifest(model_dir, text), "-o", tmp_path / "x.c"], "'aa_dnn'")


def test_flax_entry(capsys, tmp_path):
    """A Flax model in a manifest: module imported from the manifest's folder, kwargs as a TOML table."""
    examples = ROOT / "examples"
    for name in ("flax_tracking.py", "flax_tracking.msgpack", "flax_tracking_scaler.pkl"):
        shutil.copy(examples / name, tmp_path)
    (tmp_path / "flax.toml").write_text(
        textwrap.dedent("""
        [models.flax_eff]
        flax = "flax_tracking:Model"
        flax_kwargs = { layer = [128, 128, 128] }
        params = "flax_tracking.msgpack"
        n_inputs = 3
        log_columns = [1]
        preprocess = ["flax_tracking_scaler.pkl"]
        output_activation = "sigmoid"
        """)
    )
    out_c = tmp_path / "out" / "f.c"
    code, out, err = run_cli(capsys, tmp_path / "flax.toml", "-o", out_c, "--samples", 300, "--trust", "flax_tracking")
    assert code == 0, out + err
    assert "symbol flax_eff: 3 inputs -> 1 output," in out and "parity: passed against Flax" in out
    assert "float *flax_eff_preprocess(float *output, const float *input);" in (tmp_path / "out" / "f.h").read_text()


def test_parity_failure_in_a_set_exits_1(capsys, model_dir, tmp_path):
    """Zero tolerance cannot hold for tanh: exit 1, the failing model's table printed, its banner marked."""
    out_c = tmp_path / "set.c"
    fixed = ("--criterion", "fixed", "--atol", 0, "--rtol", 0)
    code, out, _ = run_cli(capsys, model_dir / "models.toml", "-o", out_c, "--samples", 300, *fixed)
    assert code == 1
    assert "parity: FAILED" in out and "max abs err" in out
    assert "Parity: FAILED" in out_c.read_text() and out_c.with_suffix(".ref.txt").is_file()
