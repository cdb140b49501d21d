"""A manifest takes the export's options (exporter.common.options) for every entry as flags or in [defaults],
or per entry as keys; a key a table does not take is refused with the reason, and a flag either does what
it says (docs/manifests.md) or is refused by name: never dropped without a word. A flag and a key that
disagree on how the C is written are refused by table and key."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from exporter.check.reference_rows import parse_rows

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


def tolerances(out):
    """Each symbol's ATOL and RTOL in the reference rows beside ``out``, and in the plugin card's SYMBOL_info."""
    _, symbols = parse_rows(out.with_suffix(".ref.txt").read_text())
    card = json.loads(out.with_suffix(".plugins.json").read_text())
    infos = {p["function"]: p["info"]["parity"] for p in card["plugins"]}
    return {r.symbol: (r.atol, r.rtol, infos[r.symbol]["atol"], infos[r.symbol]["rtol"]) for r in symbols}


def test_dtype_double_flag_changes_every_entry_s_c_type(capsys, tmp_path, model_set):
    export(capsys, model_set, tmp_path / "d.c", "--dtype", "double", "--no-check")
    header = (tmp_path / "d.h").read_text()
    assert "double *gen(double *output, const double *input, const double *random);" in header
    assert "double *cls(double *output, const double *input);" in header
    assert "float *" not in header


def test_defaults_table_takes_math_dtype_dispatch(capsys, tmp_path, model_set):
    model_set.write_text('[defaults]\ndtype = "double"\ndispatch = "none"\n' + model_set.read_text())
    source = export(capsys, model_set, tmp_path / "d.c", "--no-check")
    assert source.count(" * Math: double throughout, libm's double functions") == 2  # math follows dtype
    assert "double *cls(double *output, const double *input);" in (tmp_path / "d.h").read_text()
    assert not re.search(r"__attribute__\s*\(\(\s*target", source)


@pytest.mark.parametrize(
    ("text", "flags", "fragments"),
    [
        ('[defaults]\nmath = "fast"\n', ["--math", "libm"], ["[defaults] math: 'fast' here, but --math libm"]),
        ('[defaults]\ninputs = ["a", "b", "c"]\n', [], ["[defaults] inputs: not a key of this table: column names"]),
        ('[defaults]\ndtype = "double"\nmath = "fast"\n', [], ["[defaults] dtype: 'double' needs math libm"]),
    ],
)
def test_defaults_refuse_by_name(capsys, tmp_path, model_set, text, flags, fragments):
    model_set.write_text(text + model_set.read_text())
    assert_user_error(capsys, tmp_path, [model_set, "-o", tmp_path / "x.c", *flags], *fragments)


PIPELINE = """
[pipelines.both]
n_inputs = 3
{key}

[[pipelines.both.stages]]
model = "gen"
reads = ["input"]
"""


@pytest.mark.parametrize("key", ['math = "libm"', 'dtype = "double"', 'dispatch = "none"'])
def test_a_pipeline_refuses_how_its_stages_are_written(capsys, tmp_path, model_set, key):
    model_set.write_text(model_set.read_text() + textwrap.dedent(PIPELINE.format(key=key)))
    name = key.split()[0]
    fragment = f"[pipelines.both] {name}: not a key of this table: a pipeline's C calls its stages' functions"
    assert_user_error(capsys, tmp_path, [model_set, "-o", tmp_path / "x.c"], fragment)


def test_parity_flags_fill_what_entries_leave_unset(capsys, tmp_path, model_set):
    """--criterion fixed --atol 0.25 reaches the entries without parity keys; an entry's own criterion wins, and
    the reference rows and SYMBOL_info state the rule each export is judged by."""
    text = model_set.read_text().replace('output_activation = "softmax"', 'output_activation = "softmax"\nrtol = 0.5')
    model_set.write_text(text)
    export(capsys, model_set, tmp_path / "p.c", "--no-check", "--criterion", "fixed", "--atol", 0.25)
    assert tolerances(tmp_path / "p.c") == {"gen": (0.25, 1e-4, 0.25, 1e-4), "cls": (0.25, 0.5, 0.25, 0.5)}
    text = model_set.read_text().replace("rtol = 0.5", 'criterion = "float32"')
    model_set.write_text(text)
    export(capsys, model_set, tmp_path / "q.c", "--no-check", "--atol", 0.25)
    assert tolerances(tmp_path / "q.c") == {"gen": (0.25, 1e-4, 0.25, 1e-4), "cls": (1e-5, 1e-4, 1e-5, 1e-4)}
