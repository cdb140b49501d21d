"""The parity rule on its own: NaN and infinities on either side, and tolerances at their extremes."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.check.compare import compare, errors

NAN, INF = np.float32(np.nan), np.float32(np.inf)


def _report(c_out, ref, atol=1e-5, rtol=1e-4):
    c_out = np.asarray(c_out, dtype=np.float32).reshape(-1, 1)
    ref = np.asarray(ref, dtype=np.float32).reshape(-1, 1)
    return compare(c_out, ref, np.zeros((len(c_out), 2), np.float32), atol, rtol, "ref")


def test_nan_on_both_sides_is_agreement():
    report = _report([NAN, 1.0, NAN], [NAN, 1.0, NAN])
    assert report.passed, report.table()
    assert report.columns[0].failures == 0 and report.columns[0].nan_mismatches == 0
    assert report.columns[0].max_abs == 0.0


@pytest.mark.parametrize(("c_out", "ref"), [([NAN, 1.0], [0.0, 1.0]), ([0.0, 1.0], [NAN, 1.0])])
def test_nan_on_one_side_fails_and_is_counted(c_out, ref):
    report = _report(c_out, ref)
    assert not report.passed
    assert report.columns[0].failures == 1 and report.columns[0].nan_mismatches == 1
    assert report.columns[0].worst_row == 0
    assert "1 values NaN on one side only" in report.verdict()
    assert report.table().splitlines()[0].endswith("NaN one side")


@pytest.mark.parametrize("rtol", [np.inf, 1e30])
def test_huge_rtol_passes_zero_rows_and_still_fails_one_sided_nan(rtol):
    assert _report([0.0, 0.0, 5.0], [0.0, 0.0, 1.0], atol=0.0, rtol=rtol).passed
    assert not _report([NAN], [0.0], atol=np.inf, rtol=rtol).passed


def test_infinities_agree_only_with_the_same_infinity():
    assert _report([INF, -INF], [INF, -INF], atol=0.0, rtol=0.0).passed
    for c_out, ref in (([1e30], [INF]), ([-INF], [INF]), ([INF], [1.0])):
        report = _report(c_out, ref, atol=1.0, rtol=1.0)
        assert report.columns[0].failures == 1, (c_out, ref)


def test_ordinary_tolerance_rule_unchanged():
    """|c - ref| <= atol + rtol * |ref|: inside passes, just outside fails, zero tolerance needs equality."""
    assert _report([1.0 + 1e-4], [1.0], atol=1e-5, rtol=1e-4).passed
    assert not _report([1.0 + 2e-4], [1.0], atol=1e-5, rtol=1e-4).passed
    assert _report([0.5], [0.5], atol=0.0, rtol=0.0).passed
    err = errors(np.array([[2.0]]), np.array([[1.0]]), 0.5, 0.25)
    assert err.bound[0, 0] == 0.75 and err.failing[0, 0]


def test_chunks_give_the_figures_of_one_pass(monkeypatch):
    """Evaluated and compared in chunks (bounded memory for a huge --samples): the same report, worst rows
    and arrays as in one pass, and neither side ever sees more than a chunk of rows."""
    from exporter.check import compare as parity
    from exporter.check import inputs as parity_inputs

    rng = np.random.default_rng(5)
    inputs = rng.standard_normal((1000, 3)).astype(np.float32)
    weights = rng.standard_normal((3, 2)).astype(np.float32)
    seen = []

    def reference(x):
        seen.append(len(x))
        return x @ weights

    def compiled(x):  # off by a little everywhere, by a lot on some rows, NaN on a few
        out = x @ weights + 1e-4 * x[:, :1]
        out[x[:, 0] > 2.0] += 1.0
        out[x[:, 1] > 2.5, 1] = np.nan
        return out

    whole = parity.check_parity(compiled, reference, inputs)
    monkeypatch.setattr(parity_inputs, "CHUNK_ROWS", 64)
    seen.clear()
    chunked = parity.check_parity(compiled, reference, inputs)
    assert max(seen) == 64 and sum(seen) == 1000
    assert chunked.to_dict() == whole.to_dict() and not chunked.passed
    computed_before = parity.check_parity(compiled, inputs @ weights, inputs)  # as while the C compiled
    assert computed_before.to_dict() == whole.to_dict()
    assert chunked.columns[1].nan_mismatches == whole.columns[1].nan_mismatches >= 1
    np.testing.assert_array_equal(chunked.worst_rows(20), whole.worst_rows(20))
    np.testing.assert_array_equal(chunked.arrays.c_out, whole.arrays.c_out)


def test_random_rows_are_drawn_in_chunks_as_in_one_draw(monkeypatch):
    from exporter.check import inputs

    whole = inputs.make_inputs(4, samples=500)
    monkeypatch.setattr(inputs, "CHUNK_ROWS", 33)
    np.testing.assert_array_equal(inputs.make_inputs(4, samples=500), whole)
