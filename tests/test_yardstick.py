"""benchmarks/yardstick.py sorts each peer test model into the right outcome.

Three tiny entries run through the harness's ``examine`` in this process (the worker processes only
add isolation): a Dense model exports with parity, a ConvLSTM1D is refused by name, the same Dense
model with one weight of its C perturbed (``Export.c_edit``) gives wrong numbers, and C that does not
compile is a crash. The peers' tables themselves are checked for their size and unique names (the
numbers docs/testing.md quotes), without building their models.
"""

from __future__ import annotations

import functools
import sys

import pytest

from helpers import ROOT, perturb_weight

sys.path.insert(0, str(ROOT / "benchmarks"))

from peer_suites import Entry, S, chain
from peer_suites.harness import entries_of, examine, summarize

DENSE = Entry("tiny.000.Dense", "tiny", ((5,),), chain(S("Dense", 3, activation="tanh", name="dense")))
CONV_LSTM = Entry("tiny.001.ConvLSTM1D", "tiny", ((4, 6, 2),), chain(S("ConvLSTM1D", 2, 3)))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    def run(entry, c_edit=None):
        return examine(entry, tmp_path_factory.mktemp("yard"), samples=200, c_edit=c_edit)

    return [
        run(DENSE),
        run(CONV_LSTM),
        run(DENSE, functools.partial(perturb_weight, op_name="dense")),
        run(DENSE, lambda c: c + "\nthis is not C;\n"),
    ]


def test_each_outcome_is_told_apart(outcomes):
    exported, refused, wrong, crash = outcomes
    assert exported.outcome == "exported", exported
    assert refused.outcome == "refused" and refused.named and "ConvLSTM1D" in refused.classes, refused
    assert wrong.outcome == "wrong numbers" and "FAILED" in wrong.detail, wrong
    assert crash.outcome == "crash" and "CompileError" in crash.detail, crash


def test_summary_counts_and_aggregates(outcomes):
    summary = summarize(outcomes)
    assert summary["total"] == {"exported": 1, "refused": 1, "wrong numbers": 1, "crash": 1, "not built": 0}
    assert summary["groups"]["tiny"]["models"] == 4
    assert summary["refused_layers"][0]["class"] == "ConvLSTM1D" and summary["refused_layers"][0]["alone"] == 1
    assert [f["outcome"] for f in summary["failures"]] == ["wrong numbers", "crash"]


def test_peer_tables_have_their_documented_sizes():
    for peer, size in (("frugally-deep", 373), ("keras2c", 149)):
        names = [e.name for e in entries_of(peer)]
        assert len(names) == size == len(set(names)), peer
