"""The export's options are one value (exporter.common.options.Options), checked once where it is made, in the
words of whoever made it, and handed unchanged from the spec to the backend and the checks."""

from __future__ import annotations

import pytest

import exporter.api
from exporter import ExportError, ModelSpec, Outputs, export_spec
from exporter.api import export_chain
from exporter.backend.isa import VARIANTS
from exporter.cli.parser import CLI_WORDS
from exporter.common.options import DISPATCH_MODES, Options
from exporter.spec import Words

from helpers import ROOT

SCALER = ROOT / "examples" / "efficiency_tX.pkl"


def test_given_values_and_what_follows_from_them():
    assert Options.of(dtype="double").math == "libm"  # the inline approximations are float only
    assert Options.of().given == frozenset()
    fixed = Options.of(atol=0.5)  # a tolerance chooses the rule it belongs to
    assert (fixed.criterion, fixed.atol, fixed.rtol, fixed.given) == ("fixed", 0.5, 1e-4, {"atol", "criterion"})
    assert Options.of(inputs=["a", "b"]).inputs == ("a", "b")
    with pytest.raises(TypeError, match="'maths'"):
        Options.of(maths="libm")


def test_a_level_over_another():
    """A manifest's levels: an entry's keys over [defaults] over the flags; float32 drops the fixed rule's numbers."""
    flags = Options.of(atol=0.25, math="libm")
    assert Options.of(rtol=0.5).over(flags).values() == {
        "criterion": "fixed",
        "atol": 0.25,
        "rtol": 0.5,
        "math": "libm",
    }
    assert Options.of(criterion="float32").over(flags).values() == {"criterion": "float32", "math": "libm"}
    assert Options.of(dispatch="none").over(Options.of(dtype="double")).math == "libm"


WORDED = [
    ({"math": "exact"}, "{math} 'exact': expected one of fast, libm, fma"),
    ({"dtype": 3}, "{dtype} expected one of float, double, got 3"),
    ({"dispatch": "avx2"}, "{dispatch} 'avx2': expected one of auto, none"),
    ({"trees": "unrolled"}, "{trees} 'unrolled': expected one of auto, walk, branches, complete, bitvector"),
    ({"criterion": "loose"}, "{criterion} 'loose': expected one of float32, fixed"),
    ({"atol": -1.0}, "{atol} -1.0: expected a number >= 0"),
    ({"rtol": float("nan")}, "{rtol} nan: expected a number >= 0"),
    ({"outputs": "y"}, "{outputs} expected a list of column names (strings), got 'y'"),
    (
        {"dtype": "double", "math": "fast"},
        "{dtype} 'double' needs {math} libm or fma: the inline approximations are float only",
    ),
    ({"criterion": "float32", "rtol": 1.0}, "{criterion} 'float32' with {atol} or {rtol}: {atol} and {rtol} are the"),
]


@pytest.mark.parametrize(("given", "message"), WORDED)
@pytest.mark.parametrize("words", [CLI_WORDS, Words()], ids=["command line", "Python"])
def test_every_refusal_names_the_field_in_the_user_s_words(given, message, words):
    with pytest.raises(ExportError) as err, words.wording():
        Options.of(**given)
    assert str(err.value).startswith(
        message.format_map({k: words(k) for k in ("math", "dtype", "atol", "rtol", *given)})
    )


def test_python_keywords_are_checked_by_name_before_any_file_is_read():
    """A bad keyword is the user's error (ExportError, exit 2 on the command line), raised before loading."""
    with pytest.raises(ExportError, match=r"^math 'exact': expected one of fast, libm, fma"):
        export_chain(preprocess=["no/such/file.pkl"], math="exact")
    with pytest.raises(ExportError, match=r"^dtype given twice: as a keyword and in options="):
        export_chain(preprocess=[SCALER], dtype="double", options=Options.of(dtype="double"))


def test_the_spec_s_options_reach_the_backend_unchanged(monkeypatch, tmp_path):
    rendered = []
    real_render = exporter.api.render

    def render(*args, **kwargs):
        rendered.append(args[3])
        return real_render(*args, **kwargs)

    monkeypatch.setattr(exporter.api, "render", render)
    options = Options.of(dtype="double", dispatch="none", atol=0.25, outputs=[f"c{k}" for k in range(12)])
    spec = ModelSpec(name="tx", model=SCALER, options=options)
    result = export_spec(spec, Outputs(tmp_path / "tx.c"))
    (ex,) = result.exports
    assert ex.options is options and rendered and all(o is options for o in rendered)
    assert "double *tx(double *output, const double *input);" in (tmp_path / "tx.h").read_text()
    assert "|c - ref| <= 0.25 + 0.0001 * |ref|" in result.summary() and ex.chain.output_names[-1] == "c11"


def test_criterion_of_check_is_refused_before_compiling(monkeypatch):
    ex = export_chain(preprocess=[SCALER], name="tx")
    monkeypatch.setattr(type(ex), "compile", lambda *a, **k: pytest.fail("compiled before the criterion was checked"))
    with pytest.raises(ExportError, match="criterion 'loose'"):
        ex.check(criterion="loose")


def test_the_backend_has_a_variant_list_per_dispatch_mode():
    assert tuple(VARIANTS) == DISPATCH_MODES
