"""The float32 criterion (issue 24): the C judged from a float64 reference against what float32 itself does.

The rule on made-up numbers first (each bound, the generator gates, extrapolation rows, non-finite
values), then the float64 references the frameworks give, then a replica of Lamarr's chained generators
(QuantileTransformer targets, stages reading upstream outputs) that exports with exit 0 and, with one
deliberate mistake in its C, exits 1 naming the stage at fault.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.check import criteria, verdicts
from exporter.check.criteria import judge, nudge, ulp32
from exporter.check.verdicts import FLOOR_ULP, K_QUANTILE, K_VALUE, Criterion
from exporter.common.errors import ExportError


def _float32_like(r: np.ndarray, seed: int, ulps: float = 1.0) -> np.ndarray:
    """``r`` with float32-sized errors of about ``ulps`` ULPs (another float32 evaluation of it)."""
    rng = np.random.default_rng(seed)
    return (r + rng.uniform(-ulps, ulps, r.shape) * ulp32(r)).astype(np.float32)


@pytest.fixture
def values():
    """A float64 reference, the framework's float32 and a correct C (float32-sized errors of their own)."""
    r = np.random.default_rng(0).standard_normal((2000, 3)) * [1.0, 100.0, 1e4]
    return r, _float32_like(r, 1), _float32_like(r, 2)


def test_a_correct_c_passes_and_says_why(values):
    r, f, c = values
    judgement = judge(c, f, r, r)
    assert judgement.passed
    assert judgement.reason().startswith("output ") and "worst value" in judgement.reason()
    assert all(col.beyond == 0 for col in judgement.columns)


def test_a_distribution_worse_than_float32_fails_with_its_numbers(values):
    r, f, _ = values
    c = _float32_like(r, 2, ulps=10 * K_QUANTILE + FLOOR_ULP)  # every value far more than float32 makes
    judgement = judge(c, f, r, r)
    assert not judgement.passed
    assert "50% error" in judgement.reason() and f"> {K_QUANTILE:g} x float32's" in judgement.reason()


def test_a_quantile_is_ruled_on_only_with_enough_values_above_it(values):
    """The 99% of 300 values is the third largest: a couple of values, left to the per-value bound."""
    r, f, c = values
    c = c.copy()
    c[:5, 0] = r[:5, 0] + 60 * ulp32(r[:5, 0])  # 5 values far beyond float32's 99%, within the per-value bound
    f[:5, 0] = (r[:5, 0] + 4 * ulp32(r[:5, 0])).astype(np.float32)
    few = judge(c[:300], f[:300], r[:300], r[:300])
    assert few.passed, few.reason()
    c[:200, 0] = r[:200, 0] + 60 * ulp32(r[:200, 0])  # a tenth of the values: the 99% is ruled, and fails
    assert "99% error" in judge(c, f, r, r).reason()


def test_one_value_beyond_its_bound_fails(values):
    r, f, c = values
    c = c.copy()
    c[17, 1] = r[17, 1] + 100 * (K_VALUE + FLOOR_ULP) * ulp32(r[17, 1])  # one value, far beyond its bound
    judgement = judge(c, f, r, r)
    assert not judgement.passed and judgement.columns[1].beyond == 1 and judgement.columns[1].worst_row == 17
    assert "1 of 2000 values beyond" in judgement.reason()


def test_amplification_seen_by_float32_is_allowed(values):
    """Where float32 itself is 1000 ULPs off (a steep step), the C may be too: the bound follows the envelope."""
    r, f, c = values
    f, c = f.copy(), c.copy()
    f[:, 0] = (r[:, 0] + 1000 * ulp32(r[:, 0])).astype(np.float32)
    c[:, 0] = (r[:, 0] - 1500 * ulp32(r[:, 0])).astype(np.float32)
    assert judge(c, f, r, r).passed
    c[:, 0] = (r[:, 0] - (K_VALUE + 1) * 1000 * ulp32(r[:, 0])).astype(np.float32)
    assert not judge(c, f, r, r).passed


def test_the_nudge_envelope_covers_what_the_framework_happens_not_to_show(values):
    """The framework exact by luck at a value where one float32 rounding moves it far: the nudge says so."""
    r, _, c = values
    f = r.astype(np.float32)
    c = c.copy()
    c[5, 2] = r[5, 2] + 300 * ulp32(r[5, 2])
    assert not judge(c, f, r, r).passed
    nudged = r.copy()
    nudged[5, 2] += 100 * ulp32(r[5, 2])
    assert judge(c, f, r, nudged).passed


def test_a_value_may_carry_its_column_s_typical_rounding(values):
    """Float32 exact at one value by luck while the column rounds about 1 ULP: the C may be off there too."""
    r, f, c = values
    row = int(np.argmax(np.abs(r[:, 2])))  # the largest value: the median absolute error is a fraction of its ULP
    f, c = f.copy(), c.copy()
    f[row, 2] = np.float32(r[row, 2])
    c[row, 2] = r[row, 2] + 15 * ulp32(r[row, 2])
    assert judge(c, f, r, r).passed
    c[row, 2] = r[row, 2] + 40 * ulp32(r[row, 2])
    assert not judge(c, f, r, r).passed


def test_a_value_may_carry_its_row_s_rounding():
    """A row of large inputs whose terms cancel: float32 is far off in most of its outputs, exact by luck in
    one; the C may be as far off there as float32 is in the rest of the row."""
    r = np.random.default_rng(4).standard_normal((2000, 5))
    f, c = _float32_like(r, 5), _float32_like(r, 6)
    f[7, :4] = (r[7, :4] + 1000 * ulp32(r[7, :4])).astype(np.float32)
    f[7, 4] = np.float32(r[7, 4])
    c[7, 4] = r[7, 4] + 2000 * ulp32(r[7, 4])
    assert judge(c, f, r, r).passed
    f[7, :4] = np.float32(r[7, :4])  # the rest of the row rounds as every row does: the C's 2000 ULPs stand out
    assert not judge(c, f, r, r).passed


def test_a_generator_may_have_a_few_values_beyond_but_not_shifted_quantiles(values):
    r, f, c = values
    c = c.copy()
    c[3, 0] = r[3, 0] + 1000 * ulp32(r[3, 0])  # one value of 2000: within the generator's 0.1%
    assert not judge(c, f, r, r).passed and judge(c, f, r, r, generator=True).passed
    shifted = (c + 0.01 * np.subtract(*np.percentile(r, (75, 25), axis=0))).astype(np.float32)
    judgement = judge(shifted, f, r, r, generator=True)
    assert not judgement.passed and judgement.columns[0].gate > verdicts.GATE_QUANTILE


def test_the_floor_allows_a_few_ulps_where_float32_is_exact():
    """Values float32 holds exactly (the framework exact, nothing to nudge): the C's own arithmetic may
    still round a few times (a target transform in float32), up to the floor."""
    r = np.random.default_rng(3).standard_normal((500, 2)).astype(np.float32).astype(np.float64)
    c = (r + 3 * ulp32(r)).astype(np.float32)
    assert judge(c, r, r, r).passed
    assert not judge((r + 2 * FLOOR_ULP * ulp32(r)).astype(np.float32), r, r, r).passed


def test_the_quantile_gate_decides_a_generator_column():
    """A generator's column within its allowance of values beyond, but with shifted output quantiles, fails
    by the gate, and says so with its threshold."""
    column = verdicts.ColumnJudgement(0, [1.0] * 4, [1.0] * 4, [1.0] * 4, beyond=0, worst_row=0, worst_ratio=0.5)
    assert column.decided(1000, generator=True)[0]
    column.gate = 2 * verdicts.GATE_QUANTILE
    ok, why = column.decided(1000, generator=True)
    assert not ok and f"(gate {verdicts.GATE_QUANTILE:g})" in why


def test_the_gate_measures_a_spike_of_zeros_in_its_range():
    """A ReLU column mostly 0 (its interquartile range 0): the C's quantiles are measured in its range."""
    r = np.maximum(np.random.default_rng(7).standard_normal((1000, 1)) - 1.5, 0.0)
    f, c = _float32_like(r, 8), _float32_like(r, 9)
    judgement = judge(c, f, r, r, generator=True)
    assert judgement.passed and judgement.columns[0].gate < verdicts.GATE_QUANTILE


def test_extrapolation_rows_are_judged_apart(values):
    r, f, c = values
    c = c.copy()
    c[0] = r[0] * 2  # far off, on a row outside the fitted range
    inside = np.ones(len(r), bool)
    inside[0] = False
    judgement = judge(c, f, r, r, inside)
    assert judgement.passed and judgement.rows == len(r) - 1 and judgement.extrapolation_rows == 1
    assert "1 extrapolation rows" in judgement.extrapolation_note() and "3 values beyond" in judgement.table()
    assert not judge(c, f, r, r).passed


def test_non_finite_values_must_match_the_framework(values):
    r, f, c = values
    f, c = f.copy(), c.copy()
    f[1, 0] = c[1, 0] = np.nan
    f[2, 1] = c[2, 1] = np.inf
    assert judge(c, f, r, r).passed
    c[2, 1] = -np.inf
    assert not judge(c, f, r, r).passed


def test_near_zero_values_carry_the_column_s_rounding(values):
    """Terms that cancel to a value near zero: its own ULP is tiny, the rounding of its terms is not."""
    r, f, c = values
    r, f, c = r.copy(), f.copy(), c.copy()
    r[9, 0], f[9, 0], c[9, 0] = 1e-9, np.float32(1e-9), np.float32(1e-9 + 2e-7)  # 2e-7: a float32 sum's error
    assert judge(c, f, r, r).passed


def test_the_floor_grows_with_the_widest_sum():
    """A C sum of n terms in row order rounds about sqrt(n) times: the floor of a 100-wide network is 10 more."""
    from types import SimpleNamespace

    wide = SimpleNamespace(net=SimpleNamespace(widths={"input": 4, "hidden": 100, "output": 2}))
    assert criteria.floor_for(wide) == FLOOR_ULP + 10
    assert criteria.floor_for(SimpleNamespace(net=None)) == FLOOR_ULP + 1


def test_criterion_names_its_rule():
    assert Criterion("fixed", 1e-3, 0.0).rule() == "rule fixed: |c - ref| <= 0.001 + 0 * |ref|"
    assert f"<= {K_QUANTILE:g} x float32's" in Criterion().rule()
    with pytest.raises(ExportError, match="criterion 'loose': expected one of float32, fixed"):
        Criterion("loose")


def test_nudge_moves_by_one_float32_ulp():
    x = np.array([1.0, -3.0, 1e6, 0.0])
    moved = nudge(x, np.random.default_rng(0))
    np.testing.assert_array_equal(np.abs(moved - x), ulp32(x))
    assert nudge(x, None) is x


def test_the_nudge_leaves_discrete_columns_alone():
    """Mask and index columns are not moved: one ULP above 0 is a kept key, one below an index is another."""
    x = np.array([[0.0, 1.0, 3.0, 0.5]] * 4)
    moved = nudge(x, np.random.default_rng(0), keep=[0, 2])
    assert np.array_equal(moved[:, [0, 2]], x[:, [0, 2]])
    assert np.all(moved[:, [1, 3]] != x[:, [1, 3]])


def test_columns_judged_together_are_judged_as_alone(monkeypatch):
    """The rule runs over blocks of columns at once: each column's judgement is the one it gets in a block of
    one (whole columns, columns with non-finite values or exact zeros, rows judged apart, a generator's gate)."""
    rng = np.random.default_rng(3)
    r = rng.standard_normal((300, 9)) * 10.0 ** rng.integers(-3, 4, 9)
    r[:, 2] = np.maximum(r[:, 2], 0.0)  # a ReLU's exact zeros
    f, c, nudged = _float32_like(r, 4), _float32_like(r, 5, 3.0), _float32_like(r, 6).astype(np.float64)
    c[::7, 4], f[::7, 4], r[::11, 5] = np.nan, np.nan, np.inf  # non-finite values in some columns
    c[:, 6] = np.nan  # a column without a finite value
    inside, block = rng.random(300) < 0.9, criteria._BLOCK
    for generator in (False, True):
        together = judge(c, f, r, nudged, inside, generator)
        monkeypatch.setattr(criteria, "_BLOCK", 1)
        assert repr(judge(c, f, r, nudged, inside, generator)) == repr(together)
        monkeypatch.setattr(criteria, "_BLOCK", block)
