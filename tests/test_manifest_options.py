"""A manifest takes --math, --dtype and --dispatch for every entry, or per entry as keys (issue 27, item 13):
they used to be dropped without a word. A flag and a key that disagree are refused by entry and key."""

from __future__ import annotations

import re

import pytest

from helpers import assert_user_error, run_cli, small_model_set


@pytest.fixture
def model_set(keras, tmp_path):
    return small_model_set(keras, tmp_path / "set") / "models.toml"


def export(capsys, manifest, out, *flags):
    code, stdout, stderr = run_cli(capsys, manifest, "-o", out, "--samples", 300, *flags)
    assert code == 0, stdout + stderr
    return out.read_text()


def test_flags_reach_every_entry(capsys, tmp_path, model_set):
    source = export(capsys, model_set, tmp_path / "libm.c", "--math", "libm", "--dispatch", "none")
    assert source.count(" * Math: libm") == 2 and "Math: fast" not in source
    assert "tanhf(" in source
    assert not re.search(r"__attribute__\s*\(\(\s*target", source)  # --dispatch none: one variant only


def test_keys_set_one_entry(capsys, tmp_path, model_set):
    text = model_set.read_text().replace(
        'output_activation = "softmax"', 'output_activation = "softmax"\nmath = "libm"'
    )
    model_set.write_text(text)
    source = export(capsys, model_set, tmp_path / "one.c")
    assert source.count(" * Math: libm") == 1 and source.count(" * Math: fast") == 1


def test_a_flag_contradicting_a_key_is_refused(capsys, tmp_path, model_set):
    text = model_set.read_text().replace(
        'output_activation = "softmax"', 'output_activation = "softmax"\nmath = "fast"'
    )
    model_set.write_text(text)
    assert_user_error(
        capsys,
        tmp_path,
        [model_set, "-o", tmp_path / "x.c", "--math", "libm"],
        "[models.cls] math: 'fast' here, but --math libm on the command line",
    )


def test_a_bad_key_value_names_entry_and_key(capsys, tmp_path, model_set):
    model_set.write_text(model_set.read_text() + 'dtype = "half"\n')
    assert_user_error(capsys, tmp_path, [model_set, "-o", tmp_path / "x.c"], "[models.cls] dtype")
