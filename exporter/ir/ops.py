"""The IR's operations: small, typed, framework-free, with their weights as numpy arrays.

Every op reads one or more values (IR values, named by string) and writes one. A value is a tensor of a
static shape per row (``Graph.shapes``: ``(F,)`` for a row of features, ``(T, F)``, ``(H, W, C)``...) held
flat in row-major order; an op computes its output's shape from its inputs' (``out_shape``) and refuses
shapes it does not take. A row op (Dense, LayerNorm, softmax...) acts on the last axis: with ``steps`` > 1
it runs on each of the ``steps`` consecutive slices its inputs and output hold (the leading axes), each
slice a row of the op's own widths. Each op class names the template that renders it (``template``) and says whether its
output may overwrite an input that dies with it (``in_place``): true only when
output element ``i`` depends on input element ``i`` alone. An op owns its rules: the width
it computes from its inputs' (``out_width``), its cost (``flops``, ``n_params``), the helpers its C
calls (``helpers``: of ``templates/math.c.j2``; ``file_helpers``: of ``templates/ops/helpers.c.j2``),
the activations it evaluates (``activations``) and why it cannot be exported (``refusal``,
``weights.py``); the graph, ``inspect`` and the backend ask the op instead of knowing every op.

Adding an op: see "How to add" in docs/architecture.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from exporter.ir.activations import LINEAR, Activation
from exporter.ir.expression import Expr, X
from exporter.ir.weights import Weighted


def _vector(name: str, array: np.ndarray, width: int) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    if out.shape != (width,):
        raise ValueError(f"{name} has {out.size} values, expected {width}")
    return out


Shape = tuple[int, ...]


def size(shape: Shape) -> int:
    """The floats a value of ``shape`` holds."""
    return math.prod(shape)


@dataclass
class Op(Weighted):
    """Base of all ops. ``name`` is the source layer's name, kept for messages and comments.

    ``width`` is the output's width per step (the whole output when ``steps`` is 1).
    """

    name: str
    inputs: tuple[str, ...]
    output: str
    width: int
    steps: int = field(default=1, kw_only=True)

    template: ClassVar[str] = ""
    in_place: ClassVar[bool] = False
    n_inputs: ClassVar[int | None] = 1  # None: two or more
    # output element i is a function of input elements i alone: any shape passes through unchanged
    elementwise: ClassVar[bool] = False
    # its C reads its inputs widened to double: the backend has it read them through opaque pointers (what an
    # earlier op stored, rounded to float; ``exporter.backend.buffers.stored_reads``)
    widens: ClassVar[bool] = False

    def describe(self) -> str:
        return type(self).__name__

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        """The shape of the output from its inputs' (None: they do not fit). An elementwise op keeps its
        inputs' common shape; a row op replaces the last axis of inputs whose leading axes make ``steps``."""
        first = in_shapes[0] if in_shapes else (self.width,)
        if self.elementwise and self.steps == 1 and all(s == first for s in in_shapes) and size(first) == self.width:
            return first
        lead = first[:-1]
        if size(lead) != self.steps or any(s[:-1] != lead for s in in_shapes):
            return None
        return (*lead, self.width)

    def out_width(self, in_widths: list[int]) -> int:
        """The width this op computes from inputs of ``in_widths`` (-1: they do not fit it).
        By default an elementwise op: all inputs as wide as the output."""
        return in_widths[0] if len(set(in_widths)) == 1 else -1

    def scratch_floats(self) -> int:
        """Floats of working memory its C needs besides its inputs and output (a recurrence's state, attention
        scores), per row: the backend gives every op one stack array (``Step.tmp``) of the largest such need."""
        return 0

    def flops(self, in_widths: list[int]) -> int:
        """Estimated floating-point operations per call; by default one per element and input."""
        return self.width * max(1, len(in_widths))

    def helpers(self, math: str) -> tuple[str, ...]:
        """The helpers of ``templates/math.c.j2`` its C calls under ``math`` ("fast" or "libm")."""
        return ()

    def file_helpers(self) -> tuple[str, ...]:
        """The macros of ``templates/ops/helpers.c.j2`` its C uses: each defined once per file, before the code."""
        return ()

    @property
    def activations(self) -> tuple[Activation, ...]:
        """The activations it evaluates (the banner states their accuracy)."""
        return ()

    def index_range(self) -> tuple[int, int] | None:
        """The whole numbers ``[low, high)`` its input holds as indices (an embedding's, an encoding's; None: no
        indices): the parity rows draw them there, as a model's real inputs are."""
        return None


@dataclass
class Dense(Op):
    """``y = act(x @ kernel + bias) [+ skip]``; kernel is (n_in, n_out), the Keras layout.

    With ``residual`` the op has a second input ``skip`` (as wide as the output) added
    after the activation: a residual block's ``Add`` fused in, so the row is not walked twice.
    """

    kernel: np.ndarray = None  # type: ignore[assignment]
    bias: np.ndarray | None = None
    activation: Activation = LINEAR
    residual: bool = False

    template: ClassVar[str] = "dense"
    n_inputs: ClassVar[int | None] = None  # x, then skip when residual

    def __post_init__(self) -> None:
        self.kernel = np.ascontiguousarray(self.kernel, dtype=np.float32)
        if self.kernel.ndim != 2 or self.kernel.shape[1] != self.width:
            raise ValueError(f"kernel shape {self.kernel.shape} does not give {self.width} outputs")
        if self.bias is not None:
            self.bias = _vector("bias", self.bias, self.width)

    @property
    def n_in(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def input_widths(self) -> list[int]:
        return [self.n_in, self.width] if self.residual else [self.n_in]

    def describe(self) -> str:
        bias = "" if self.bias is not None else ", no bias"
        skip = ", + skip" if self.residual else ""
        return f"Dense {self.n_in}->{self.width}, {self.activation.describe()}{bias}{skip}"

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == self.input_widths else -1

    def flops(self, in_widths: list[int]) -> int:
        residual = self.width if self.residual else 0
        return 2 * self.n_in * self.width + self.activation.flops(self.width) + residual

    def helpers(self, math: str) -> tuple[str, ...]:
        return self.activation.helpers(math)

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # KEEP_SUMS in its loops over the inputs, OPAQUE on a few inputs' weights

    @property
    def activations(self) -> tuple[Activation, ...]:
        return (self.activation,)


@dataclass
class Activate(Op):
    """An activation applied on its own (elementwise, or softmax over the row)."""

    activation: Activation = LINEAR

    template: ClassVar[str] = "activate"
    in_place: ClassVar[bool] = True  # softmax too: it reads the whole row before writing

    @property
    def elementwise(self) -> bool:  # type: ignore[override]
        return not self.activation.is_vector

    def describe(self) -> str:
        return f"Activation {self.activation.describe()}"

    def flops(self, in_widths: list[int]) -> int:
        return self.activation.flops(self.width)

    def helpers(self, math: str) -> tuple[str, ...]:
        return self.activation.helpers(math)

    @property
    def activations(self) -> tuple[Activation, ...]:
        return (self.activation,)


@dataclass
class Affine(Op):
    """Per-feature ``y = x * scale + shift``: inference BatchNorm, Rescaling, Normalization.

    ``scale`` and ``shift`` hold one value per ``inner`` consecutive values of each step: with ``inner`` 1 one
    per value (a row's features); with ``inner`` > 1 value ``k`` takes entry ``k / inner``, so a vector over
    axes in the middle of a tensor (a BatchNormalization of axis 1 on ``(T, F)``: ``T`` entries, each over
    ``F`` values) is repeated over the axes after them (``inner``) and those before them (``steps``).
    """

    scale: np.ndarray = None  # type: ignore[assignment]
    shift: np.ndarray = None  # type: ignore[assignment]
    inner: int = field(default=1, kw_only=True)

    template: ClassVar[str] = "affine"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.inner < 1 or self.width % self.inner:
            raise ValueError(f"{self.width} values are no whole number of blocks of {self.inner}")
        self.scale = _vector("scale", self.scale, self.entries)
        self.shift = _vector("shift", self.shift, self.entries)

    @property
    def entries(self) -> int:
        """The values of ``scale`` (and ``shift``): one per block of ``inner`` values of a step."""
        return self.width // self.inner

    def describe(self) -> str:
        return f"Affine {self.width}" + (f", {self.entries} values each over {self.inner}" if self.inner > 1 else "")

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        """An elementwise or row op; or the input's shape when its axes split into ``steps`` slices of ``width``
        values whose trailing axes make blocks of ``inner`` (a vector along a middle axis, or along an axis
        followed by axes of 1)."""
        if (fitted := super().out_shape(in_shapes)) is not None or len(in_shapes) != 1:
            return fitted
        (shape,) = in_shapes
        cuts = [(size(shape[:k]), size(shape[k:])) for k in range(len(shape) + 1)]
        fits = (self.steps, self.width) in cuts and any(rest == self.inner for _, rest in cuts)
        return shape if fits else None

    def flops(self, in_widths: list[int]) -> int:
        return 2 * self.width

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # OPAQUE on its scale and shift


@dataclass
class PReLU(Op):
    """``y = x > 0 ? x : alpha * x`` with one learned slope per feature."""

    alpha: np.ndarray = None  # type: ignore[assignment]

    template: ClassVar[str] = "prelu"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.alpha = _vector("alpha", self.alpha, self.width)

    def describe(self) -> str:
        return f"PReLU {self.width}"

    def flops(self, in_widths: list[int]) -> int:
        return self.width

    def helpers(self, math: str) -> tuple[str, ...]:
        return ("pick",)


MERGE_KINDS = ("add", "subtract", "multiply", "divide", "average", "maximum", "minimum")


def affine_parts(kind: str, c: np.ndarray, constant_first: bool) -> tuple[Any, Any] | None:
    """``x kind c`` (``c kind x`` when ``constant_first``) as ``x * scale + shift``: (scale, shift), or None
    when it is no affine map of x (a constant divided by x). A zero divisor gives an infinite scale, which
    ``Affine`` refuses."""
    if kind == "add":
        return 1.0, c
    if kind == "multiply":
        return c, 0.0
    if kind == "subtract":
        return (-1.0, c) if constant_first else (1.0, -c)
    if kind == "divide" and not constant_first:
        with np.errstate(divide="ignore"):
            return 1.0 / c, 0.0
    return None


@dataclass
class Merge(Op):
    """Elementwise combination of equally wide inputs, folded left to right."""

    kind: str = "add"

    template: ClassVar[str] = "merge"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True
    n_inputs: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        if self.kind not in MERGE_KINDS:
            raise ValueError(f"unknown merge kind {self.kind!r}")
        if len(self.inputs) < 2 or (self.kind in ("subtract", "divide") and len(self.inputs) != 2):
            raise ValueError(f"{self.kind} of {len(self.inputs)} inputs")

    def describe(self) -> str:
        return f"{self.kind.capitalize()} of {len(self.inputs)}"

    def flops(self, in_widths: list[int]) -> int:
        return (len(in_widths) - 1 + (self.kind == "average")) * self.width

    def helpers(self, math: str) -> tuple[str, ...]:
        return {"maximum": ("max",), "minimum": ("min",)}.get(self.kind, ())


@dataclass
class Reduce(Op):
    """The maximum or the sum of a row, as one value (traced JAX: softmax, normalisations)."""

    kind: str = "sum"

    template: ClassVar[str] = "reduce"

    def __post_init__(self) -> None:
        if self.kind not in ("sum", "max") or self.width != 1:
            raise ValueError(f"reduce {self.kind!r} to width {self.width}")

    def describe(self) -> str:
        return f"Reduce {self.kind}"

    def out_width(self, in_widths: list[int]) -> int:
        return 1


@dataclass
class Broadcast(Op):
    """One value repeated over a row of ``width``."""

    template: ClassVar[str] = "broadcast"

    def describe(self) -> str:
        return f"Broadcast to {self.width}"

    def out_width(self, in_widths: list[int]) -> int:
        return self.width if in_widths == [1] else -1


@dataclass
class Formula(Op):
    """An elementwise formula of each value ``x`` (``exporter.ir.expression``), computed in double:
    a custom layer registered with a C expression (``exporter.register_layer``)."""

    expr: Expr = X

    template: ClassVar[str] = "formula"
    in_place: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True
    widens: ClassVar[bool] = True

    def describe(self) -> str:
        return f"Formula y = {self.expr.c()}"


@dataclass
class LayerNorm(Op):
    """``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` over the whole row (mean and variance of its
    features); computed in double, in two passes (the mean first), and rounded once per output."""

    scale: np.ndarray = None  # type: ignore[assignment]
    bias: np.ndarray = None  # type: ignore[assignment]
    epsilon: float = 1e-5

    template: ClassVar[str] = "layernorm"
    in_place: ClassVar[bool] = True  # the row is read whole (mean, variance) before element k is written from x[k]
    widens: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.scale = _vector("scale", self.scale, self.width)
        self.bias = _vector("bias", self.bias, self.width)
        self.epsilon = float(self.epsilon)

    def describe(self) -> str:
        return f"LayerNorm {self.width}, epsilon {self.epsilon:g}"

    def out_shape(self, in_shapes: list[Shape]) -> Shape | None:
        """The input's shape, normalized over its last axes (as many as make ``width``)."""
        (shape,) = in_shapes
        cuts = range(len(shape))
        return shape if any((size(shape[:k]), size(shape[k:])) == (self.steps, self.width) for k in cuts) else None

    def flops(self, in_widths: list[int]) -> int:
        return 7 * self.width  # sum; difference, square, sum; difference, product, scale and shift

    def file_helpers(self) -> tuple[str, ...]:
        return ("barriers",)  # OPAQUE on its scale and bias, and on its input (``widens``)

    def refusal(self) -> str | None:
        if not (np.isfinite(self.epsilon) and self.epsilon >= 0):
            return f"epsilon {self.epsilon}: must be a finite number >= 0"
        return super().refusal()
