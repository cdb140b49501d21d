"""The run, its summary and the sets handle anything that follows the declared protocols
(``exporter/check/subject.py``, ``exporter/run/request.py``), and the classes that should follow them do."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest

from exporter.api import Export
from exporter.backend import CSource, render
from exporter.check.subject import Exported, ExportedModel, ExportedPipeline
from exporter.common.errors import ExportError
from exporter.ir import Dense, Graph
from exporter.ir.chain import Chain
from exporter.run.request import Exportable, Outputs
from exporter.run.summary import Result
from exporter.sets.manifest import ModelSet
from exporter.sets.pipelines import PipelineExport, PipelineSpec, check_distinct
from exporter.spec import ModelSpec


def members(protocol: type) -> set[str]:
    """Every attribute, property and method ``protocol`` and the protocols it extends declare."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is Protocol or not getattr(klass, "_is_protocol", False):
            continue
        names |= set(vars(klass).get("__annotations__", {}))
        names |= {n for n, v in vars(klass).items() if callable(v) or isinstance(v, property)}
    return {n for n in names if not n.startswith("_")}


def provided(cls: type) -> set[str]:
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return fields | set(dir(cls))


@pytest.mark.parametrize(
    ("cls", "protocol"),
    [
        (Export, Exported),
        (Export, ExportedModel),
        (PipelineExport, Exported),
        (PipelineExport, ExportedPipeline),
        (ModelSpec, Exportable),
        (PipelineSpec, Exportable),
        (ModelSet, Exportable),
    ],
    ids=lambda x: x.__name__,
)
def test_the_classes_provide_what_the_protocols_declare(cls, protocol):
    missing = members(protocol) - provided(cls)
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"


def test_the_walk_sees_a_missing_member():
    """``members`` and ``provided`` can fail the test above: what a protocol and the protocols it extends
    declare is seen, and a class without ``expect`` is told."""

    @dataclass
    class Partial:
        symbol: str = "x"

    assert {"symbol", "check", "parts"} <= members(Exported) and "title" in members(Exportable)
    assert {"expect", "compile_source", "values"} <= members(ExportedModel) | members(ExportedPipeline)
    assert "expect" in members(Exported) - provided(Partial)


def _network() -> tuple[Chain, CSource]:
    graph = Graph("x", "y", {"x": 3, "y": 2}, [Dense("d", ("x",), "y", 2, np.ones((3, 2), np.float32))], "net")
    chain = Chain(net=graph, source="net")
    return chain, render(chain, "standin")


@dataclass
class Verdict:
    """A parity report as the summary reads it (``exporter.check.subject.Report``)."""

    passed: bool
    rows: int = 100
    worst_input: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0])

    def verdict(self) -> str:
        return "passed on 100 rows" if self.passed else "FAILED on 100 rows"

    def table(self) -> str:
        return "THE TABLE"


@dataclass
class StandIn:
    """An exported thing that is neither an ``Export`` nor a ``PipelineExport``: it follows ``Exported`` as far
    as the summary and ``check_distinct`` read it, and says itself whether it is one model."""

    symbol: str
    chain: Chain
    source: CSource
    composed: bool = False
    framework: str = "numpy"
    framework_version: str = ""
    calls: list[StandIn] = field(default_factory=list)

    @property
    def model(self) -> StandIn | None:
        return None if self.composed else self

    @property
    def parts(self) -> list[StandIn]:
        return self.calls if self.composed else [self]


@dataclass
class Spec:
    """An ``Exportable`` as far as the summary reads it."""

    one_model: bool
    title: str = "stand-ins.toml"


def _result(spec: Spec, exports: list[Any], reports: dict[str, Any], tmp_path: Path) -> Result:
    return Result(spec, Outputs(tmp_path / "out.c"), exports, reports)  # type: ignore[arg-type]


def test_the_summary_of_stand_ins_asks_them_what_they_are(tmp_path):
    """A set's summary shows a failed model's table and a composition's table even when it passed (its
    diagnosis), from what the objects say (``model``), whatever their class."""
    chain, source = _network()
    model = StandIn("one", chain, source)
    failed = StandIn("two", chain, source)
    composed = StandIn("both", chain, source, composed=True, calls=[model, failed])
    reports = {"one": Verdict(True), "two": Verdict(False), "both": Verdict(True)}
    text = _result(Spec(one_model=False), [model, failed, composed], reports, tmp_path).summary()
    blocks = {line.split(":")[0].split()[-1]: line for line in text.split("  symbol ")[1:]}
    assert "THE TABLE" not in blocks["one"] and "THE TABLE" in blocks["two"] and "THE TABLE" in blocks["both"]
    assert "symbol both: 3 inputs -> 2 outputs, 6 parameters" in text and "out.ref.txt" in text


def test_the_summary_of_one_stand_in_model_lists_its_steps(tmp_path):
    chain, source = _network()
    ex = StandIn("standin", chain, source)
    text = _result(Spec(one_model=True), [ex], {"standin": Verdict(False)}, tmp_path).summary()
    assert "symbol standin: 3 inputs -> 2 outputs, 1 step" in text and "d: Dense 3->2" in text
    assert "worst input row: [1, 2, 3]" in text and "out.ref.txt" not in text
    composed = StandIn("standin", chain, source, composed=True, calls=[ex])  # one export, but no model
    assert "d: Dense 3->2" not in _result(Spec(one_model=True), [composed], {}, tmp_path).summary()


def test_check_distinct_allows_a_composition_to_call_its_parts():
    """A composition's C names the functions it calls (its ``parts``): not a clash; a model naming another
    model's function is one."""
    chain, source = _network()
    helper = StandIn("standin_pick", chain, render(chain, "standin_pick"))
    calling_source = dataclasses.replace(source, c=source.c + "standin_pick(output, input);")
    calling = StandIn("standin", chain, calling_source, composed=True, calls=[helper])
    check_distinct([helper, calling], "stand-ins")  # type: ignore[list-item]
    calling.composed = False
    with pytest.raises(ExportError, match="'standin_pick' is also a name the C code of standin uses"):
        check_distinct([helper, calling], "stand-ins")  # type: ignore[list-item]
