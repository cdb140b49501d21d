"""--json, --report and --trace for a manifest: one document with an entry per model and per pipeline (validated
against the committed schema), one page with a section per model and per pipeline, and traces of what failed."""

from __future__ import annotations

import base64
import functools
import io
import json
import pickle
import re
import textwrap

import jsonschema
import pytest
from PIL import Image

from exporter.spec import ModelSpec

from helpers import assert_user_error, perturb_weight, randomize, run_quietly, saved, validate_document

# a model file's name and a layer's name as a hostile file may write them: markup, an escape sequence, a bidi override
HOSTILE = "<img src=x onerror=alert(1)>&\x1b[2K\u202e"
BROKEN_STEP = "cls_out+output softmax"  # cls's last Dense, its softmax fused into it
SAMPLES = ["--samples", 200, "--dispatch", "none"]  # few rows, the network's code once: a small, fast run


@pytest.fixture(scope="module")
def set_dir(tmp_path_factory, keras):
    """Two small models (a generator whose file name is hostile, a classifier with a hostile layer name) and a
    pipeline of both: gen reads the input, cls reads an input column and gen's outputs."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("set")
    L = keras.layers
    cond, noise = keras.Input((3,)), keras.Input((2,))
    hidden = L.Dense(8, activation="tanh", name="gen_hidden")(L.Concatenate(name="gen_join")([cond, noise]))
    saved(randomize(keras.Model([cond, noise], L.Dense(2, name="gen_out")(hidden)), 1), folder, HOSTILE + "gen.keras")
    x = keras.Input((3,))
    hidden = L.Dense(8, activation="tanh", name=HOSTILE + "cls_hidden")(x)  # no dead unit hides a broken weight
    saved(randomize(keras.Model(x, L.Dense(4, name="cls_out")(hidden)), 2), folder, "cls.keras")
    rng = np.random.default_rng(0)
    (folder / "tX.pkl").write_bytes(pickle.dumps(StandardScaler().fit(rng.normal(size=(300, 3)) * 2 + 1)))
    toml_name = HOSTILE.replace("\x1b", "\\u001b")
    (folder / "set.toml").write_text(
        textwrap.dedent(f"""
        [models.gen]
        model = "{toml_name}gen.keras"
        preprocess = ["tX.pkl"]
        noise = 2

        [models.cls]
        model = "cls.keras"
        preprocess = ["tX.pkl"]
        output_activation = "softmax"

        [pipelines.chain]
        n_inputs = 3
        output = ["cls"]
        stages = [{{ model = "gen", reads = ["input"] }}, {{ model = "cls", reads = ["input[0:1]", "gen"] }}]
        """)
    )
    return folder


@pytest.fixture(scope="module")
def passing(set_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("passing")
    code, stdout, stderr = run_quietly(
        set_dir / "set.toml", "-o", out / "set.c", "--json", "--report", out / "report", *SAMPLES
    )
    return code, stdout, stderr, out / "report"


@pytest.fixture(scope="module")
def broken(set_dir, tmp_path_factory):
    """cls's last Dense broken in the C (one weight), traced: the model and the pipeline's stage cls fail."""
    build = ModelSpec.build

    def broken_build(self):  # every model's hook: the set's library is compiled through the first one's
        ex = build(self)
        ex.c_edit = functools.partial(perturb_weight, op_name=BROKEN_STEP)
        return ex

    out = tmp_path_factory.mktemp("broken")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModelSpec, "build", broken_build)
        code, stdout, stderr = run_quietly(
            set_dir / "set.toml", "-o", out / "set.c", "--trace", "--report", out / "report", *SAMPLES
        )
    return code, stdout, stderr, out / "report"


def test_json_has_an_entry_per_model_and_pipeline(passing):
    code, out, err, report_dir = passing
    assert code == 0, err
    assert err == "", "--json prints no progress lines"
    document = json.loads(out)  # stdout is the document and nothing else
    assert document == json.loads((report_dir / "report.json").read_text())
    validate_document(document)
    assert document["kind"] == "set" and document["passed"] is True and document["exit_code"] == 0
    assert document["manifest"]["file"] == "set.toml" and document["library"] == "set"
    gen, cls = document["models"]
    assert (gen["symbol"], cls["symbol"]) == ("gen", "cls") and gen["n_noise"] == 2
    assert gen["sources"][0]["file"] == HOSTILE + "gen.keras" and cls["framework"].startswith("Keras")
    for model in (gen, cls):
        parity = model["parity"]
        assert model["passed"] and parity["criterion"] == "float32" and parity["judgement"]["reason"]
        assert parity["samples"] == 200 and parity["rows"] == 200 + parity["edge_rows"]
        assert model["trace"] is None and model["inspection"]["symbol"] == model["symbol"]
    (chain,) = document["pipelines"]
    assert [s["name"] for s in chain["stages"]] == ["gen", "cls"] and chain["stages"][1]["reads"][0] == "input[0:1]"
    assert chain["output"] == ["cls[0:4]"] and chain["n_outputs"] == 4
    parity = chain["parity"]
    assert chain["passed"] and parity["routing_ok"] and parity["wrong_stages"] == [] and chain["traces"] == []
    assert parity["diagnosis"].startswith("every stage passes") and "end to end" in parity["verdict"]
    assert parity["end_to_end"]["judgement"]["generator"] and len(parity["end_to_end"]["outputs"]) == 4
    first, second = parity["stages"]
    assert first["alone"]["passed"] and second["conditional"]["passed"]
    assert first["amplification"]["rows_fed"] == 0 and first["amplification"]["gain"] is None  # reads the input
    fed = second["amplification"]
    assert 0 < fed["rows_fed"] <= fed["rows"] and fed["gain"]["max"] >= fed["gain"]["median"] >= 0
    assert fed["received"]["max"] > 0  # gen's C outputs differ from Keras' by float32 rounding


def test_the_schema_holds_a_set_to_its_shape(passing):
    document = json.loads(passing[1])
    chain = document["pipelines"][0]
    stage = chain["parity"]["stages"][1]
    for broken in (
        {**document, "models": [{**document["models"][0], "sources": "gen.keras"}]},
        {
            **document,
            "pipelines": [{**chain, "parity": {**chain["parity"], "stages": [{**stage, "amplification": 1}]}}],
        },
        {**document, "pipelines": [{**chain, "traces": [{"stage": "cls"}]}]},
        {**document, "kind": "export"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_document(broken)


def test_the_page_has_a_section_per_model_and_pipeline(passing):
    html = (passing[3] / "report.html").read_text()
    assert "<script" not in html.lower() and "parity PASSED" in html
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    inside = [link for link in links if link.startswith("#")]
    assert inside == ["#model-gen", "#model-cls", "#pipeline-chain"]  # the summary's table links to each section
    assert all(link.startswith("data:image/png;base64,") for link in links if not link.startswith("#")), "no fetch"
    sections = re.findall(r'<section class="page" id="([^"]+)">(.*?)</section>', html, re.S)
    assert [name for name, _ in sections] == ["model-gen", "model-cls", "pipeline-chain"]
    images = {name: re.findall(r'src="data:image/png;base64,([^"]+)"', body) for name, body in sections}
    # per output, and cls's class probabilities; the pipeline's bound chart, its 4 outputs, one figure per stage
    assert {name: len(found) for name, found in images.items()} == {"model-gen": 2, "model-cls": 5, "pipeline-chain": 7}
    for found in images.values():
        png = Image.open(io.BytesIO(base64.b64decode(found[-1])))
        assert png.format == "PNG" and png.width > 400
    chain = dict(sections)["pipeline-chain"]
    for fragment in ("Diagnosis:", "every stage passes", "Stage by stage", "carries through and adds", "stage cls:"):
        assert fragment in chain, fragment
    assert "gain (carried through / received) median" in chain and "fed no difference" in chain  # cls, gen


def test_names_from_files_are_inert_in_the_page(passing):
    """The hostile file name (gen's sources) and layer name (cls's inspect table) are text: the markup escaped, the
    escape sequence and the bidi override shown as escapes."""
    html = (passing[3] / "report.html").read_text()
    assert "<img src=x" not in html and "\x1b" not in html and "\u202e" not in html
    shown = "&lt;img src=x onerror=alert(1)&gt;&amp;\\x1b[2K\\u202e"
    assert html.count(shown + "gen.keras") >= 1 and html.count(shown + "cls_hidden") >= 1


def test_trace_names_the_broken_step_of_the_model_and_of_the_stage(broken):
    code, out, err, report_dir = broken
    assert code == 1, out + err
    drift = f"first step beyond tolerance: step 2 '{BROKEN_STEP}' (Dense 8->4, softmax)"  # 0: the preprocessing
    lines = out.splitlines()
    cls = lines.index(next(line for line in lines if line.startswith("  symbol cls:")))
    assert f"    trace: {drift}" in lines[cls:], out  # the model cls, traced on its own parity rows
    chain = next(line for line in lines if "diagnosis:" in line)
    assert "wrong translation of stage cls" in chain
    assert f"    trace of stage cls (alone comparison's rows): {drift}" in lines, out
    assert "trace of stage gen" not in out and out.count("trace: ") == 1  # gen passes: not traced
    document = json.loads((report_dir / "report.json").read_text())
    validate_document(document)
    assert document["exit_code"] == 1 and [m["passed"] for m in document["models"]] == [True, False]
    assert document["models"][1]["trace"]["first_drift"]["name"] == BROKEN_STEP
    (traced,) = document["pipelines"][0]["traces"]
    assert (traced["stage"], traced["comparison"]) == ("cls", "alone")
    assert traced["trace"]["first_drift"]["name"] == BROKEN_STEP
    assert document["pipelines"][0]["parity"]["wrong_stages"] == ["cls"]
    html = (report_dir / "report.html").read_text()
    assert "Trace of stage cls (on the rows of its alone comparison)" in html and "parity FAILED" in html


def test_set_flags_are_checked_first(capsys, set_dir, tmp_path):
    manifest = set_dir / "set.toml"
    assert_user_error(capsys, tmp_path, [manifest, "--depends", "--json"], "--depends", "not with --json")
    assert_user_error(capsys, tmp_path, [manifest, "--trace", "--no-check"], "cannot run with --no-check")
    assert_user_error(capsys, tmp_path, [manifest, "--pt-column", 0], "--pt-column does not go with a manifest")
    (tmp_path / "file").write_text("")
    args = [manifest, "-o", tmp_path / "s.c", "--report", tmp_path / "file"]
    assert_user_error(capsys, tmp_path, args, "exists and is not a folder")
