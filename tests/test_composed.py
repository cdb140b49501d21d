"""Pipelines: models of a manifest called in turn inside one C function, checked end to end, stage by stage
and conditionally; refusals name the pipeline, the stage and the key."""

from __future__ import annotations

import pickle
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from exporter.build.toolchain import CompiledModel, build
from exporter.check import inputs
from exporter.check.reference_rows import parse_rows
from exporter.common.errors import ExportError
from exporter.common.progress import Progress
from exporter.sets.manifest import read_manifest
from exporter.sets.pipelines import PipelineSpec, StageSpec
from exporter.sets.slices import parse_slice

from helpers import ROOT, assert_user_error, first_value, randomize, run_cli, saved, strict_compile

MODELS = """
[models.rich]
model = "rich.keras"
preprocess = ["tX.pkl"]
target_transform = "rich_tY.pkl"
noise = 4

[models.muon]
model = "muon.keras"
preprocess = ["tX.pkl"]
noise = 3

[models.gpid]
model = "gpid.keras"
noise = 4
output_activation = "sigmoid"

[models.ismuon]
model = "ismuon.keras"
preprocess = ["tX.pkl"]
output_activation = "sigmoid"
"""

PIPELINE = """
[pipelines.full]
n_inputs = 3
n_random = 11
scikinc_names = true

[[pipelines.full.stages]]
model = "rich"
reads = ["input"]
noise = 4

[[pipelines.full.stages]]
model = "muon"
reads = ["input[0:3]"]

[[pipelines.full.stages]]
model = "gpid"
reads = ["input[0:3]", "rich", "muon[0]"]
"""


ISMUON = """
[pipelines.ismu]
n_inputs = 3
stages = [{ model = "ismuon", reads = ["input"] }]
"""


def generator(keras, n_cond: int, n_noise: int, n_out: int, seed: int):
    L = keras.layers
    cond, noise = keras.Input((n_cond,)), keras.Input((n_noise,))
    h = L.Dense(16)(L.Concatenate()([cond, noise]))
    h = L.LeakyReLU(negative_slope=0.1)(h)
    h = L.Add()([h, L.LeakyReLU(negative_slope=0.1)(L.Dense(16)(h))])
    return randomize(keras.Model([cond, noise], L.Dense(n_out)(h)), seed)


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory, keras):
    """Three generators (rich: 3 -> 2, muon: 3 -> 1, gpid: 3 + 2 + 1 -> 3) and a classifier, a manifest."""
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    folder = tmp_path_factory.mktemp("pipe")
    saved(generator(keras, 3, 4, 2, 1), folder, "rich.keras")
    saved(generator(keras, 3, 3, 1, 2), folder, "muon.keras")
    saved(generator(keras, 6, 4, 3, 3), folder, "gpid.keras")
    x = keras.Input((3,))
    saved(
        randomize(keras.Model(x, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(x))), 4),
        folder,
        "ismuon.keras",
    )
    rng = np.random.default_rng(0)
    (folder / "tX.pkl").write_bytes(pickle.dumps(StandardScaler().fit(rng.normal(size=(300, 3)) * 3 + 1)))
    target = QuantileTransformer(n_quantiles=40, output_distribution="normal").fit(rng.gamma(2.0, size=(300, 2)))
    (folder / "rich_tY.pkl").write_bytes(pickle.dumps(target))
    (folder / "pid.toml").write_text(MODELS + PIPELINE + ISMUON)
    return folder


def test_pipeline_exports_one_function(capsys, pipe_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "CHUNK_ROWS", 512)  # more rows than a chunk: compared chunk by chunk
    out_c = tmp_path / "pid.c"
    code, out, err = run_cli(
        capsys, pipe_dir / "pid.toml", "-o", out_c, "--so", tmp_path / "libpid.so", "--samples", 2000
    )
    assert code == 0, out + err
    assert "symbol full: 3 inputs + 11 noise -> 6 outputs" in out
    assert "parity: passed end to end, stage by stage and conditionally" in out
    assert "end to end, by the float32 rule:" in out and "decided by: output" in out and "C error 50%/90%" in out
    header = out_c.with_suffix(".h").read_text()
    for line in (
        "float *full(float *output, const float *input, const float *random);",
        "float *full_batch(float *output, const float *input, const float *random, size_t n);",
        "#define full_N_INPUTS 3",
        "#define full_N_OUTPUTS 6",
        "#define full_N_RANDOM 11",
        # scikinC's names for the stages' steps: two arguments, a generator's network on conditions + noise
        "float *rich_tX(float *output, const float *input);",
        "float *rich_tY_inverse(float *output, const float *input);",
        "float *rich_dnn(float *output, const float *input);",
        "float *gpid_dnn(float *output, const float *input);",
        "#define rich_dnn_N_INPUTS 7",
        # a pipeline without noise: two arguments
        "float *ismu(float *output, const float *input);",
        "#define ismu_N_RANDOM 0",
    ):
        assert line in header, line
    assert "ismuon_tX" not in header  # not a stage of a pipeline with scikinc_names
    strict_compile(out_c, tmp_path)

    functions, rows = parse_rows(out_c.with_suffix(".ref.txt").read_text())
    assert functions["full"] == (3, 6, 11) and functions["rich_dnn"] == (7, 2, 0)
    ref = next(r for r in rows if r.symbol == "full")
    fn = CompiledModel("full", tmp_path / "libpid.so", 3, 6, n_noise=11)
    np.testing.assert_allclose(fn(ref.inputs, ref.noise), ref.outputs, atol=ref.atol, rtol=ref.rtol)
    np.testing.assert_array_equal(fn.call_in_place(ref.inputs, ref.noise), fn(ref.inputs, ref.noise))
    np.testing.assert_array_equal(fn.batch(ref.inputs, ref.noise), fn(ref.inputs, ref.noise))

    # the scikinC glue, as Lamarr wrote it by hand, gives what the stage gives
    lib = tmp_path / "libpid.so"
    tx, dnn = CompiledModel("rich_tX", lib, 3, 3), CompiledModel("rich_dnn", lib, 7, 2)
    ty, rich = CompiledModel("rich_tY_inverse", lib, 2, 2), CompiledModel("rich", lib, 3, 2, n_noise=4)
    noise = ref.noise[:, :4]
    glued = ty(dnn(np.c_[tx(ref.inputs), noise]))
    np.testing.assert_array_equal(glued, rich(ref.inputs, noise))
    np.testing.assert_array_equal(dnn.call_in_place(np.c_[tx(ref.inputs), noise]), dnn(np.c_[tx(ref.inputs), noise]))


def test_parse_slice():
    assert parse_slice("input").resolve(5) == parse_slice("input[:]").resolve(5)
    assert (parse_slice("rich[2]").start, parse_slice("rich[2]").stop) == (2, 3)
    assert str(parse_slice("rich[1:]").resolve(4)) == "rich[1:4]"
    for bad in ("rich[]", "rich[a:b]", "3rich", "rich[1:2", "rich[-1]"):
        with pytest.raises(ValueError, match="expected NAME"):
            parse_slice(bad)


REFUSALS = [
    # a stage reading an output not computed yet
    (
        PIPELINE.replace('model = "rich"\nreads = ["input"]', 'model = "rich"\nreads = ["input[0:1]", "muon[0:2]"]'),
        ["[pipelines.full] stage rich reads: muon[0:2]: not computed yet (muon runs after rich"],
    ),
    # a cycle
    (
        PIPELINE.replace('model = "rich"\nreads = ["input"]', 'model = "rich"\nreads = ["input[0:2]", "gpid[0]"]'),
        ["[pipelines.full] stage rich reads: gpid[0]: a cycle (rich -> gpid -> rich)"],
    ),
    (
        PIPELINE.replace('reads = ["input"]', 'reads = ["rich"]'),
        ["stage rich reads: rich: a stage cannot read its own output"],
    ),
    # widths that do not match
    (
        PIPELINE.replace('"muon[0]"]', '"muon[0:1]", "input[0]"]'),
        ["[pipelines.full] stage gpid reads:", "give 7 values, gpid takes 6"],
    ),
    (
        PIPELINE.replace('"rich", "muon[0]"', '"rich[0:3]", "muon[0]"'),
        ["stage gpid reads: rich[0:3]: out of range, rich has 2 values"],
    ),
    (
        PIPELINE.replace("n_inputs = 3", "n_inputs = 4"),
        ["[pipelines.full] stage rich reads: input[0:4]", "give 4 values, rich takes 3"],
    ),
    # noise counts that do not add up
    (
        PIPELINE.replace("n_random = 11", "n_random = 12"),
        ["[pipelines.full] n_random: 12, but the stages take 11 noise values (rich 4 + muon 3 + gpid 4)"],
    ),
    (
        PIPELINE.replace("noise = 4\n\n[[", "noise = 5\n\n[["),
        ["[pipelines.full] stage rich noise: 5: model rich takes 4 noise values"],
    ),
    # names and keys
    (
        PIPELINE.replace('model = "muon"', 'model = "muons"'),
        ["[pipelines.full] stage muons model: 'muons': not a model of this manifest"],
    ),
    (
        PIPELINE.replace('reads = ["input[0:3]"]', 'reads = ["inputs[0:3]"]'),
        ["stage muon reads: inputs[0:3]: inputs is neither input nor a stage"],
    ),
    (  # a malformed slice in a stage that an earlier one reads ahead of
        PIPELINE.replace('reads = ["input"]', 'reads = ["input[0:2]", "gpid[0]"]').replace('"muon[0]"]', '"muon[0"]'),
        ["stage gpid reads: 'muon[0': expected NAME"],
    ),
    (
        PIPELINE.replace('reads = ["input[0:3]"]', 'reads = ["input[0:3"]'),
        ["stage muon reads: 'input[0:3': expected NAME"],
    ),
    (
        PIPELINE.replace("n_random = 11", 'n_random = 11\noutput = ["input[0:2]"]'),
        ["[pipelines.full] output: input[0:2]: the output is made of stage outputs"],
    ),
    (PIPELINE.replace("n_random = 11", 'n_random = 11\nouptut = ["rich"]'), ["[pipelines.full] ouptut: unknown key"]),
    (PIPELINE.replace("n_inputs = 3\n", ""), ["[pipelines.full] n_inputs: missing"]),
    (
        PIPELINE + '[[pipelines.full.stages]]\nmodel = "rich"\nreads = ["input"]\n',
        ["[pipelines.full] stage rich model: listed twice"],
    ),
]


@pytest.mark.parametrize(("pipeline", "fragments"), REFUSALS)
def test_refusals_name_pipeline_stage_and_key(capsys, pipe_dir, tmp_path, pipeline, fragments):
    path = pipe_dir / "bad.toml"
    path.write_text(MODELS + pipeline)
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "x.c", "--samples", 100], "bad.toml", *fragments)


def test_python_pipeline_spec_words_its_errors(pipe_dir):
    (rich, muon, *_) = read_manifest(pipe_dir / "pid.toml")
    spec = PipelineSpec("pl", 3, [StageSpec(rich, ["input"]), StageSpec(muon, ["rich[0:3]"])])
    with pytest.raises(ExportError, match=r"^pipeline pl stage muon reads: rich\[0:3\]: out of range"):
        spec.build()
    with pytest.raises(ExportError, match=r"^pipeline int name: 'int': a C or C\+\+ keyword"):
        PipelineSpec("int", 3, [StageSpec(rich, ["input"])]).check()


def _pipeline_and_library(manifest, name, edit=None):
    """A manifest's set exported in Python, its library compiled (``edit``: the C text changed first),
    and its pipeline ``name`` with its function in that library."""
    from exporter.sets.manifest import ModelSet

    spec = ModelSet(manifest.stem, manifest, read_manifest(manifest))
    exports = spec.exports(Progress(enabled=False))
    pipe, first = next(ex for ex in exports if ex.symbol == name), exports[0]
    source = spec.combine([ex.source for ex in exports])
    if edit is not None:
        source = replace(source, c=edit(source.c))
    n_in, n_out, n_noise = first.source.widths[first.symbol]
    library = build(replace(source, symbol=first.symbol), n_in, n_out, n_noise=n_noise, one_isa=True)
    return pipe, library.sibling(pipe.symbol, *pipe.source.widths[pipe.symbol])


def _add_to_first(array: str, delta: float, c: str) -> str:
    """Add ``delta`` to the first value of the static array ``array`` in the C text."""
    value = first_value(c, array)
    end = min(c.index(",", value), c.index("}", value))
    return c[:value] + f"{float(c[value:end].strip().rstrip('f')) + delta:.9e}f" + c[end:]


def test_a_broken_stage_is_named(pipe_dir):
    """Muon's network broken in the C: stage by stage names muon, not gpid downstream of it, nor rich."""
    pipe, compiled = _pipeline_and_library(
        pipe_dir / "pid.toml", "full", lambda c: _add_to_first("muon_dnn_random_1_kernel", 0.5, c)
    )
    report = pipe.check(compiled, pipe.inputs(1000))
    assert not report.passed and not report.end_to_end.passed
    assert report.wrong_stages() == ["muon"]
    assert report.stages["rich"].passed and report.stages["gpid"].passed and report.conditional["gpid"].passed
    assert report.routing_ok
    assert report.diagnosis().startswith("wrong translation of stage muon")
    assert "wrong translation of stage muon" in report.table() and "FAILED" in report.verdict()


def test_amplified_differences_are_told_apart(pipe_dir, keras):
    """By the fixed rule: a stage whose C differs from Python within its tolerance (4e-6, float32-rounding
    sized), read by a steep stage (tanh(100 x)): every stage passes on its own and on C's values, end to end
    fails: amplification. (The float32 rule calls that bias a wrong translation: 4e-6 is many ULPs.)"""
    L = keras.layers
    x = keras.Input((3,))
    saved(randomize(keras.Model(x, L.Dense(1)(x)), 7), pipe_dir, "lin.keras")
    steep = keras.Model((y := keras.Input((1,))), L.Dense(1, activation="tanh", use_bias=False)(y))
    steep.layers[-1].set_weights([np.array([[100.0]], np.float32)])
    saved(steep, pipe_dir, "steep.keras")
    manifest = pipe_dir / "amp.toml"
    manifest.write_text(
        textwrap.dedent("""
        [models.lin]
        model = "lin.keras"
        [models.steep]
        model = "steep.keras"
        [pipelines.amp]
        n_inputs = 3
        stages = [{ model = "lin", reads = ["input"] }, { model = "steep", reads = ["lin"] }]
    """)
    )
    pipe, compiled = _pipeline_and_library(manifest, "amp", lambda c: _add_to_first("lin_0_bias", 4e-6, c))
    report = pipe.check(compiled, pipe.inputs(2000), criterion="fixed")
    assert report.translated and not report.passed and not report.end_to_end.passed
    assert report.diagnosis().startswith("amplified float32 differences")
    assert "beyond tolerance" in report.table()
    assert pipe.check(compiled, pipe.inputs(2000)).wrong_stages() == ["lin"]  # the float32 rule: a wrong bias

    correct = pipe.check(_pipeline_and_library(manifest, "amp")[1], pipe.inputs(2000))
    assert correct.passed, correct.table()  # the correct C, amplified as much, passes the float32 rule


def test_routing_is_checked(pipe_dir):
    """Glue that copies rich's two outputs to gpid in reverse order is a routing error, not a stage's."""

    def wrong_slice(c: str) -> str:
        return c.replace("full_in[3 + k] = full_out0[0 + k]", "full_in[3 + k] = full_out0[1 - k]")

    pipe, compiled = _pipeline_and_library(pipe_dir / "pid.toml", "full", wrong_slice)
    report = pipe.check(compiled, pipe.inputs(500))
    assert not report.routing_ok and "routing" in report.diagnosis()


def test_the_python_values_computed_ahead_are_used(pipe_dir):
    """``check`` takes back what ``expect`` computed (the run computes it while the C compiles): the same report
    as the values computed in ``check``, and values that are not Python's are what the C is compared with (by
    the fixed rule: the float32 rule judges against the float64 references of the stages instead)."""
    pipe, compiled = _pipeline_and_library(pipe_dir / "pid.toml", "full")
    rows = pipe.inputs(500)
    noise = pipe.noise(len(rows))
    expected = pipe.expect(rows, noise)
    ahead, here = pipe.check(compiled, rows, noise=noise, expected=expected), pipe.check(compiled, rows, noise=noise)
    assert ahead.passed and ahead.table() == here.table()
    shifted = {**expected, "muon": expected["muon"] + 1.0}
    wrong = pipe.check(compiled, rows, noise=noise, expected=shifted, criterion="fixed")
    assert not wrong.passed and "muon" in wrong.wrong_stages()


def test_repr_is_one_short_line(pipe_dir):
    """``repr`` of an export says what it is in a line (symbol, widths, steps, parameters, source size), not
    every weight of its IR (the dataclass's repr was over a megabyte for the example)."""
    from exporter import export_keras
    from exporter.sets.manifest import ModelSet
    from exporter.sets.pipelines import PipelineExport

    manifest = pipe_dir / "pid.toml"
    exports = ModelSet(manifest.stem, manifest, read_manifest(manifest)).exports(Progress(enabled=False))
    example = export_keras(ROOT / "examples" / "efficiency.keras")
    assert any(isinstance(ex, PipelineExport) for ex in exports)
    for ex in [example, *exports]:
        text = repr(ex)
        assert len(text) < 500 and "\n" not in text, text
        assert text.startswith(f"<{type(ex).__name__} {ex.symbol}: ") and "parameters" in text
    assert "12 inputs -> 4 outputs, 7 steps, 84,740 parameters" in repr(example)
