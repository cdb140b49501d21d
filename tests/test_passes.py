"""IR passes: which residual adds are fused into the Dense before them, and which are not."""

from __future__ import annotations

import numpy as np

from exporter.ir import Dense, Graph, Merge, optimize


def dense(name: str, x: str, out: str, n: int = 3) -> Dense:
    return Dense(name, (x,), out, n, kernel=np.eye(n, dtype=np.float32), bias=np.zeros(n, np.float32))


def graph(ops, output: str, n: int = 3) -> Graph:
    values = {"x", *(op.output for op in ops)}
    return Graph("x", output, {v: n for v in values}, list(ops), "test")


def test_residual_add_is_fused_whichever_side_the_dense_is_on():
    for inputs in (("x", "d"), ("d", "x")):
        g = optimize(graph([dense("d", "x", "d"), Merge("m", inputs, "y", 3, kind="add")], "y"))
        assert [type(op).__name__ for op in g.ops] == ["Dense"]
        (op,) = g.ops
        assert op.residual and op.inputs == ("x", "x") and op.output == "y"
        assert op.describe().endswith("+ skip")


def test_not_fused_when_the_dense_output_is_used_elsewhere_or_added_to_itself():
    used_twice = [
        dense("d", "x", "d"),
        Merge("m", ("x", "d"), "s", 3, kind="add"),
        Merge("m", ("s", "d"), "y", 3, kind="multiply"),
    ]
    itself = [dense("d", "x", "d"), Merge("m", ("d", "d"), "y", 3, kind="add")]
    three = [dense("d", "x", "d"), Merge("m", ("x", "d", "x"), "y", 3, kind="add")]
    subtract = [dense("d", "x", "d"), Merge("m", ("x", "d"), "y", 3, kind="subtract")]
    for ops in (used_twice, itself, three, subtract):
        g = optimize(graph(ops, "y"))
        assert not any(getattr(op, "residual", False) for op in g.ops)


def test_chain_of_residual_blocks():
    ops = []
    x = "x"
    for i in range(3):
        ops += [dense(f"d{i}", x, f"d{i}"), Merge("m", (x, f"d{i}"), f"s{i}", 3, kind="add")]
        x = f"s{i}"
    g = optimize(graph(ops, x))
    assert [op.inputs for op in g.ops] == [("x", "x"), ("s0", "s0"), ("s1", "s1")]
