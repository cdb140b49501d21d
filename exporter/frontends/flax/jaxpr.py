"""Traced JAX -> IR: walk the jaxpr of ``f(params, x)`` for one input row, primitive by primitive.

Every value in the jaxpr is one of three things:

- ``Const``: known now (parameters, literals, anything computed only from them), folded with JAX;
- ``Lanes``: still a per-column function of the raw input (``jnp.log(x[1])``, ``(x - m) / s``):
  preprocessing, which becomes a double-precision column stage the first time a lane-mixing
  primitive (a matmul, say) needs it as a row;
- ``Data``: an IR value of the network.

``dot_general`` becomes a Dense, the bias add and per-feature scalings become Affine ops which
the IR passes fold into it, so a Flax network gives the same IR and the same C as its Keras twin.
Calls of named ``jax.nn`` activations are recognised by name; other calls are inlined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import exporter.frontends.flax.recurrent as recurrent
from exporter.common.errors import Problem, UnsupportedModelError
from exporter.frontends.builder import Builder, Unsupported
from exporter.frontends.flax.convolution import broadcast_merge, on_tensor
from exporter.frontends.flax.lanes import column_op, part
from exporter.frontends.registry import Registry
from exporter.ir import Activate, Activation, Affine, Broadcast, Concatenate, Dense, Graph, Merge, Reduce
from exporter.ir.activations import KINDS
from exporter.ir.columns import ColumnOp, ColumnStage, Select


@dataclass(frozen=True)
class Const:
    value: Any  # a numpy or JAX array (JAX's, e.g., for PRNG keys, which numpy cannot hold)


@dataclass(frozen=True)
class Lanes:
    """A vector (or scalar) whose element j is ``ops_j(raw[source_j])``; ops are column-op factories."""

    lanes: tuple[tuple[int, tuple[tuple[str, float], ...]], ...]
    scalar: bool = False


@dataclass(frozen=True)
class Data:
    name: str
    scalar: bool = False  # a 0-d value (a reduction), stored as width 1


@dataclass(frozen=True)
class RefusedResult:
    """The result of a refused primitive: what depends on it is not reported again."""


Value = Const | Lanes | Data | RefusedResult

# jax.nn calls whose IR kind has another name or whose parameters have JAX's defaults (read from the
# call's constant arguments); a jax.nn function named like an IR kind without parameters maps to it by name
NAMED: Registry[str, Callable[[list[float]], Activation]] = Registry(
    "jax.nn call",
    {
        "relu6": lambda a: Activation("relu_general", {"negative_slope": 0.0, "max_value": 6.0, "threshold": 0.0}),
        "swish": lambda a: Activation("silu"),
        "soft_sign": lambda a: Activation("softsign"),
        "leaky_relu": lambda a: Activation("leaky_relu", {"negative_slope": a[0] if a else 0.01}),
        "elu": lambda a: Activation("elu", {"alpha": a[0] if a else 1.0}),
        "celu": lambda a: Activation("celu", {"alpha": a[0] if a else 1.0}),
        "squareplus": lambda a: Activation("squareplus", {"b": a[0] if a else 4.0}),
    },
)


def named_activation(name: str | None, constants: list[Any]) -> Activation | None:
    """The IR activation of a named jax.nn call with these constant arguments, or None to trace into it."""
    import jax

    maker = NAMED.get(name or "")
    if maker is not None:
        try:
            return maker([float(np.asarray(c).reshape(-1)[0]) for c in constants])
        except ValueError as err:  # a parameter that is not a finite number
            raise Unsupported(str(err)) from None
    kind = KINDS.get(name or "")
    if kind is not None and not kind.params and not kind.vector and not constants and hasattr(jax.nn, name or ""):
        return Activation(name)  # type: ignore[arg-type]
    return None


# primitive -> IR kind: the kind of the same name but for these three
UNARY = {
    "tanh": "tanh",
    "logistic": "sigmoid",
    "exp": "exponential",
    **{name: name for name in "log log1p expm1 abs sqrt rsqrt erf erfc sin cos tan asin acos atan".split()},
    **{name: name for name in "sinh cosh asinh acosh atanh exp2 cbrt floor ceil sign".split()},
}
LANE_FUNCTIONS = {**{name: name for name in "log log1p exp expm1 sqrt tanh".split()}, "atanh": "arctanh"}
IDENTITY = {*"copy copy_p stop_gradient reshape squeeze expand_dims optimization_barrier".split()}
CALLS = {  # call primitive -> the parameter holding its jaxpr
    **dict.fromkeys(("pjit", "jit", "remat", "checkpoint"), "jaxpr"),
    **dict.fromkeys(("closed_call", "core_call", "custom_jvp_call", "custom_vjp_call"), "call_jaxpr"),
    "custom_vjp_call_jaxpr": "fun_jaxpr",
}
MERGES = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "max": "maximum", "min": "minimum"}


_EXPORTER = str(Path(__file__).parents[1])  # the frontends' own frames (modules.py's interceptor) are not the user's


def _where(eqn: Any) -> str:
    """The innermost line of the user's own code that made this primitive (not JAX's, Flax's or the exporter's)."""
    try:
        from jax._src import source_info_util

        for frame in source_info_util.user_frames(eqn.source_info.traceback):
            if "site-packages" not in frame.file_name and not frame.file_name.startswith(_EXPORTER):
                return f"{frame.file_name}:{frame.start_line} ({frame.function_name})"
    except Exception:  # the location is a courtesy (and JAX-internal API): never fail over it
        pass
    return ""


class JaxprWalker:
    def __init__(self, source: str, n_inputs: int, marks: dict[str, Callable[..., Value]] | None = None):
        self.b = Builder(source)
        self.marks = marks or {}  # calls mapped whole (modules.py): by name, (walker, values) -> the output
        self.n_inputs = n_inputs
        self.pre: ColumnStage | None = None
        self.materialized: dict[Lanes, Data] = {}
        self.label = ""  # where the current primitive comes from, for op names
        self.whole = False  # parts of the raw input sliced from it whole (lanes.part), not selected as preprocessing

    # -- values ---------------------------------------------------------------------------------
    def width(self, v: Data) -> int:
        return self.b.widths[v.name]

    def to_data(self, v: Lanes | Data) -> Data:
        """A row the network can use: lanes become the preprocessing stage (once) and the graph input."""
        if isinstance(v, Data):
            return v
        if v in self.materialized:
            return self.materialized[v]
        if self.whole and (data := part(self, v)) is not None:
            return data
        if self.materialized:
            raise Unsupported("the raw input is used in two different ways: preprocess it once, at the start")
        ops: list[ColumnOp] = []
        sources = tuple(src for src, _ in v.lanes)
        if sources != tuple(range(self.n_inputs)) or any(lane_ops for _, lane_ops in v.lanes):
            ops.append(Select("jnp preprocessing (columns)", sources, self.n_inputs))
            for j, (_, lane_ops) in enumerate(v.lanes):
                ops += [column_op(kind, arg, j) for kind, arg in lane_ops]
            self.pre = ColumnStage(self.n_inputs, ops)
        data = Data(self.b.value(len(v.lanes)), v.scalar)
        self.materialized[v] = data
        return data

    # -- the walk -------------------------------------------------------------------------------
    def run(self, jaxpr: Any, args: list[Value], consts: list[Any] = ()) -> list[Value]:  # type: ignore[assignment]
        env: dict[Any, Value] = dict(zip(jaxpr.invars, args, strict=True))
        env.update(zip(jaxpr.constvars, (Const(c) for c in consts), strict=True))

        def read(atom: Any) -> Value:
            if hasattr(atom, "val"):  # a Literal
                return Const(np.asarray(atom.val))
            return env[atom]

        for eqn in jaxpr.eqns:
            ins = [read(a) for a in eqn.invars]
            if any(isinstance(v, RefusedResult) for v in ins):
                env.update((v, RefusedResult()) for v in eqn.outvars)
                continue
            try:
                outs = self.eqn(eqn, ins)
            except Unsupported as err:
                where = _where(eqn)
                label = f"{eqn.primitive.name}" + (f" at {where}" if where else "")
                self.b.problems.append(Problem(label, "primitive", str(err), "primitive"))
                outs = [RefusedResult() for _ in eqn.outvars]
            env.update(zip(eqn.outvars, outs, strict=True))
        return [read(a) for a in jaxpr.outvars]

    def eqn(self, eqn: Any, ins: list[Value]) -> list[Value]:
        name = eqn.primitive.name
        self.label = str(getattr(eqn.source_info, "name_stack", "")) or name  # e.g. "Model/Dense_0"
        if name.startswith(("random_", "threefry")):
            raise Unsupported("random numbers have no place in a deterministic C function")
        if all(isinstance(v, Const) for v in ins):
            return self.fold(eqn, ins)
        if name in CALLS:
            return self.call(eqn, ins)
        if name in IDENTITY and isinstance(ins[0], Data):  # a sequence (a shape of its own) relabelled
            return [Data(recurrent.relabel(self.b, self.label, ins[0].name, eqn.outvars[0].aval.shape), ins[0].scalar)]
        if name in IDENTITY:
            return [ins[0]]
        if name == recurrent.NAME:  # nn.RNN, as recurrent.intercepted left it; its weights are constants
            outs = recurrent.walk(self.b, self.label, eqn.params, self.to_data(ins[0]).name, ins[1:])  # type: ignore[arg-type]
            return [RefusedResult() if o is None else Data(o) for o in outs]
        if any(isinstance(v, Lanes) for v in ins):
            lanes = self.lanes(eqn, ins)
            if lanes is not None:
                return [lanes]
            ins = [self.to_data(v) if isinstance(v, Lanes) else v for v in ins]
        return [self.network(eqn, ins)]

    def fold(self, eqn: Any, ins: list[Value]) -> list[Value]:
        import jax

        values = [v.value for v in ins]  # type: ignore[union-attr]
        if eqn.primitive.name in CALLS:
            closed = eqn.params[CALLS[eqn.primitive.name]]
            out = jax.core.eval_jaxpr(getattr(closed, "jaxpr", closed), getattr(closed, "consts", []), *values)
        else:
            out = eqn.primitive.bind(*values, **eqn.params)
        out = out if eqn.primitive.multiple_results or isinstance(out, (list, tuple)) else [out]
        return [Const(o) for o in out]

    def call(self, eqn: Any, ins: list[Value]) -> list[Value]:
        closed = eqn.params[CALLS[eqn.primitive.name]]
        name = eqn.params.get("name")
        if name in self.marks:
            return [self.marks[name](self, ins)]
        data = [v for v in ins if not isinstance(v, Const)]
        constants = [v.value for v in ins if isinstance(v, Const)]
        activation = named_activation(name, constants) if len(data) == 1 and len(eqn.outvars) == 1 else None
        if activation is not None:
            x = self.to_data(data[0])
            width = self.width(x)
            return [Data(self.b.add(Activate, name, [x.name], width, activation=activation), x.scalar)]
        return self.run(getattr(closed, "jaxpr", closed), ins, getattr(closed, "consts", []))

    # -- preprocessing: lane bookkeeping ----------------------------------------------------------
    def lanes(self, eqn: Any, ins: list[Value]) -> Lanes | None:
        """The result as lanes when the primitive keeps columns apart, else None (materialise)."""
        name, p = eqn.primitive.name, eqn.params
        x = ins[0]
        if name == "slice" and isinstance(x, Lanes) and len(p["start_indices"]) == 1:
            step = (p["strides"] or (1,))[0]
            return Lanes(x.lanes[p["start_indices"][0] : p["limit_indices"][0] : step])
        if name == "broadcast_in_dim" and isinstance(x, Lanes) and x.scalar and tuple(p["shape"]) == (1,):
            return Lanes(x.lanes)
        if name == "broadcast_in_dim" and isinstance(x, Lanes) and len(x.lanes) == int(np.prod(p["shape"])):
            return Lanes(x.lanes, scalar=len(p["shape"]) == 0)
        if name in ("squeeze", "reshape") and isinstance(x, Lanes) and len(x.lanes) == 1:
            return Lanes(x.lanes, scalar=len(eqn.outvars[0].aval.shape) == 0)
        if name == "concatenate" and all(isinstance(v, Lanes) for v in ins):
            return Lanes(tuple(lane for v in ins for lane in v.lanes))  # type: ignore[union-attr]
        if name == "scatter" and isinstance(x, Lanes) and isinstance(ins[1], Const) and isinstance(ins[2], Lanes):
            index = int(np.asarray(ins[1].value).reshape(-1)[0])
            lanes = list(x.lanes)
            lanes[index] = ins[2].lanes[0]
            return Lanes(tuple(lanes))
        if name in LANE_FUNCTIONS and isinstance(x, Lanes):
            return self._extend(x, [(LANE_FUNCTIONS[name], 0.0)] * len(x.lanes))
        if name == "integer_pow" and isinstance(x, Lanes) and p["y"] == 2:
            return self._extend(x, [("square", 0.0)] * len(x.lanes))
        if name in ("add", "sub", "mul", "div") and len(ins) == 2:
            lanes, const = (ins[0], ins[1]) if isinstance(ins[0], Lanes) else (ins[1], ins[0])
            if isinstance(lanes, Lanes) and isinstance(const, Const) and eqn.outvars[0].aval.size == len(lanes.lanes):
                values = np.broadcast_to(np.asarray(const.value, np.float64), eqn.outvars[0].aval.shape).reshape(-1)
                if name in ("sub", "div") and lanes is not ins[0]:
                    return None  # c - x, c / x: leave it to the network
                return self._extend(lanes, [(name, float(c)) for c in values])
        return None

    @staticmethod
    def _extend(x: Lanes, ops: list[tuple[str, float]]) -> Lanes:
        return Lanes(tuple((src, (*lane_ops, op)) for (src, lane_ops), op in zip(x.lanes, ops, strict=True)), x.scalar)

    # -- the network ------------------------------------------------------------------------------
    def network(self, eqn: Any, ins: list[Value]) -> Value:
        name, p = eqn.primitive.name, eqn.params
        data = [v for v in ins if isinstance(v, Data)]
        x = data[0]
        width = self.width(x)
        if (shaped := on_tensor(self.b, self.label, eqn, x.name, [getattr(v, "value", None) for v in ins])) is not None:
            return Data(shaped)  # a tensor's convolution, pooling, padding, Dense (convolution.py)
        if name == "dot_general" and isinstance(ins[0], Data) and isinstance(ins[1], Const):
            (lhs_c, rhs_c), (lhs_b, rhs_b) = p["dimension_numbers"]
            w = np.asarray(ins[1].value, np.float64)
            if lhs_b or rhs_b or tuple(lhs_c) != (0,) or w.ndim != 2:
                raise Unsupported(f"matrix product with dimension numbers {p['dimension_numbers']}")
            kernel = w if tuple(rhs_c) == (0,) else w.T
            return Data(self.b.add(Dense, self.label, [x.name], kernel.shape[1], kernel=kernel))
        if name in UNARY:
            return self._activate(x, Activation(UNARY[name]), name)
        if name == "integer_pow":
            return self._activate(x, Activation("integer_pow", {"exponent": float(p["y"])}), name)
        if name == "square":
            return self._activate(x, Activation("integer_pow", {"exponent": 2.0}), name)
        if name == "round" and int(p["rounding_method"]) == 1:  # jax.lax.RoundingMethod.TO_NEAREST_EVEN
            return self._activate(x, Activation("round"), name)
        if name == "neg":
            return self._affine(x, -1.0, 0.0, name)
        if name == "max" and len(data) == 1 and np.all(np.asarray(_const(ins).value) == 0):
            return self._activate(x, Activation("relu"), "relu")
        if name in ("max", "min") and len(data) == 1:
            bound = np.asarray(_const(ins).value)
            if np.all(bound == (-np.inf if name == "max" else np.inf)):
                return x  # softmax's max(-inf, max(x)): the identity on numbers
        if name in MERGES and len(data) == 1:
            c = np.broadcast_to(np.asarray(_const(ins).value, np.float64), eqn.outvars[0].aval.shape)
            const_first = isinstance(ins[0], Const)
            if name == "add":
                return self._affine(x, 1.0, c, name)
            if name == "mul":
                return self._affine(x, c, 0.0, name)
            if name == "sub":
                return self._affine(x, -1.0, c, name) if const_first else self._affine(x, 1.0, -c, name)
            if name == "div" and not const_first:
                return self._affine(x, 1.0 / c, 0.0, name)
            raise Unsupported(f"{name} of a constant and a network value in this order")
        if name in MERGES and len(widths := {self.width(d) for d in data}) > 1 and 1 not in widths:  # broadcast
            return Data(broadcast_merge(self.b, self.label, eqn, [d.name for d in data], MERGES[name]))
        if name in MERGES:
            a, b = (self._row(v, max(self.width(d) for d in data)) for v in data)
            return Data(self.b.add(Merge, self.label, [a.name, b.name], self.width(a), kind=MERGES[name]))
        if name in ("reduce_max", "reduce_sum") and tuple(p["axes"]) == (0,):
            return Data(self.b.add(Reduce, self.label, [x.name], 1, kind=name[7:]), scalar=True)
        if name == "broadcast_in_dim" and x.scalar and len(p["shape"]) == 1:
            return self._row(x, int(p["shape"][0]))
        if name == "broadcast_in_dim" and tuple(p["shape"]) == (width,):
            return x
        if name == "concatenate" and all(isinstance(v, Data) for v in ins):
            names = [v.name for v in data]
            shape, at = self.b.shape(x.name), int(p["dimension"])  # sequences: along their last axis, step by step
            steps = int(np.prod(shape[:at]))
            width = sum(self.width(v) for v in data) // steps
            return Data(self.b.add(Concatenate, self.label, names, width, axis=at - len(shape), steps=steps))
        if name in ("gt", "lt", "ge", "le", "eq", "ne", "select_n", "cond", "while", "scan"):
            raise Unsupported("control flow or selection that depends on the data has no C translation")
        raise Unsupported("this primitive (or this use of it) has no C translation")

    def _row(self, v: Data, width: int) -> Data:
        if self.width(v) == width:
            return v
        if self.width(v) == 1:
            return Data(self.b.add(Broadcast, self.label, [v.name], width))
        raise Unsupported(f"values of widths {self.width(v)} and {width} do not broadcast")

    def _activate(self, x: Data, act: Activation, name: str) -> Data:
        return Data(self.b.add(Activate, self.label, [x.name], self.width(x), activation=act), x.scalar)

    def _affine(self, x: Data, scale: Any, shift: Any, name: str) -> Data:
        width = self.width(x)
        scale, shift = (np.asarray(v, np.float64).reshape(-1) for v in (scale, shift))
        if not {scale.size, shift.size} <= {1, width}:  # a reduced value times a row of constants, say
            raise Unsupported(f"values of widths {width} and {max(scale.size, shift.size)} do not broadcast")
        scale, shift = np.broadcast_to(scale, (width,)), np.broadcast_to(shift, (width,))
        return Data(self.b.add(Affine, self.label, [x.name], width, scale=scale, shift=shift), x.scalar)


def _const(ins: list[Value]) -> Const:
    return next(v for v in ins if isinstance(v, Const))


def jaxpr_to_ir(
    fn: Callable[[Any, Any], Any], params: Any, n_inputs: int, source: str, marks: dict[str, Any] | None = None
) -> tuple[ColumnStage | None, Graph]:
    """Trace ``fn(params, x)`` for one row of ``n_inputs`` floats; its preprocessing stage and network
    (``marks``: calls mapped whole, filled while ``fn`` is traced)."""
    import jax
    import jax.numpy as jnp

    leaves, treedef = jax.tree_util.tree_flatten(params)
    with recurrent.intercepted(source):  # nn.RNN as one primitive, not a scan
        closed = jax.make_jaxpr(lambda flat, x: fn(jax.tree_util.tree_unflatten(treedef, flat), x))(
            leaves, jnp.zeros((n_inputs,), jnp.float32)
        )
    raw = Lanes(tuple((i, ()) for i in range(n_inputs)))
    args: list[Value] = [*(Const(v) for v in leaves), raw]
    for whole in (False, True):  # parts of the row read apart (a sequence and its mask): again, sliced from it whole
        walker = JaxprWalker(source, n_inputs, marks)
        walker.whole = whole
        outs = walker.run(closed.jaxpr, args, closed.consts)
        if not any("used in two different ways" in p.reason for p in walker.b.problems):
            break
    if len(outs) != 1:
        problem = Problem("output", "tuple", f"{len(outs)} outputs; one is supported", "output")
        raise UnsupportedModelError(source, [problem])
    (out,) = outs
    if isinstance(out, (Const, RefusedResult)):
        problems = walker.b.problems or [Problem("output", "value", "does not depend on the input", "output")]
        raise UnsupportedModelError(source, problems)
    try:
        output = walker.to_data(out)
    except Unsupported as err:
        walker.b.problems.append(Problem("output", "value", str(err), "output"))
        output = Data(walker.b.value(1))
    graph_input = walker.materialized[next(iter(walker.materialized))].name if walker.materialized else output.name
    return walker.pre, walker.b.finish(graph_input, output.name)
