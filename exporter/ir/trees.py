"""Tree ensembles as one IR op: static node arrays, summed leaf values, then an exact link function.

Every tree family (one decision tree, random forests, extra trees, gradient boosting, histogram
gradient boosting) is the same computation: from ``baseline``, walk every tree to a leaf and add
the leaf's values to the accumulators from column ``offsets[t]`` on; divide by ``divisor`` (a
forest's mean); apply ``link`` (``identity``, ``exp``, ``logistic``: the two-column
``[1 - p, p]`` of ``p = expit(raw_scale * raw)``; ``sigmoid``: ``p`` alone, or ``softmax``). Sums and
link are computed in double, in the order scikit-learn and LightGBM compute them, or with
``precision="float"`` in float, as XGBoost computes them (its sigmoid and softmax formulas exactly).

A split sends a row left when ``(float)x <= threshold`` (as scikit-learn compares its float32
inputs with its float64 thresholds: ``threshold`` here is the largest float32 not above the
fitted one, which gives the same answer for every float32 ``x``), or when ``x`` is NaN and
``missing_left`` is set for the node; at the nodes ``zero_missing`` flags, values within
``zero_band`` of zero count as missing too (LightGBM's zero-as-missing splits). Internal nodes
are numbered across all trees; a child index ``c < 0`` is the leaf ``~c``.

A categorical split (``category_set[node] >= 0``; XGBoost's and LightGBM's) tests set membership instead:
it sends a row left when ``(float)x`` is a category listed in its set, or is NaN and ``missing_left`` is set;
every other value goes right. A value ``v >= category_min`` is the category ``(int32)v`` (truncated toward
zero: LightGBM reads -0.5 as category 0, XGBoost calls every negative value no category, hence the
threshold); below it, or NaN, it is no category. A set is a bitset of 32-bit words (bit ``c % 32`` of word
``c / 32``, ``category_words[category_at[s]:category_at[s + 1]]``, at least one word): a category beyond its
words is not listed. The threshold of a categorical node is unused (0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from exporter.ir.ops import Op

MAX_CATEGORY = (1 << 24) - 1  # XGBoost's largest category; the sets' words are bounded by it (2 MiB a set)
LINKS = ("identity", "exp", "logistic", "sigmoid", "softmax")
PRECISIONS = ("double", "float")


def float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold: ``x <= t`` iff ``x <= floor`` for float32 ``x``."""
    t = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore"):
        rounded = t.astype(np.float32)
    above = rounded.astype(np.float64) > t
    return np.where(above, np.nextafter(rounded, np.float32(-np.inf)), rounded).astype(np.float32)


def _float32(values: np.ndarray) -> bool:
    return bool(np.array_equal(values.astype(np.float32).astype(np.float64), values, equal_nan=True))


@dataclass
class TreeEnsemble(Op):
    """Trees walked on the input row, summed into ``n_raw`` accumulators, linked to ``width`` outputs."""

    roots: np.ndarray = None  # type: ignore[assignment]  # int32, per tree: its first node (or ~leaf)
    feature: np.ndarray = None  # type: ignore[assignment]  # int32, per internal node
    threshold: np.ndarray = None  # type: ignore[assignment]  # float32, per internal node
    children: np.ndarray = None  # type: ignore[assignment]  # int32, (left, right) per internal node
    missing_left: np.ndarray = None  # type: ignore[assignment]  # uint8, per internal node: NaN goes left
    leaf_values: np.ndarray = None  # type: ignore[assignment]  # float64, (n_leaves, leaf_width)
    offsets: np.ndarray = None  # type: ignore[assignment]  # int32, per tree: first accumulator it adds to
    baseline: np.ndarray = None  # type: ignore[assignment]  # float64, the accumulators' start
    divisor: float = 1.0
    link: str = "identity"
    raw_scale: float = 1.0  # logistic only: expit(raw_scale * raw) (2 for the exponential loss)
    depth: int = 0
    missing: bool = False  # the fitted model says where NaN goes (else NaN is outside its domain)
    precision: str = "double"  # of the sums and the link: "float" as XGBoost computes them
    zero_missing: np.ndarray | None = None  # uint8, per internal node: |x| <= zero_band counts as missing there
    zero_band: float = 0.0  # a float32 value
    category_set: np.ndarray | None = None  # int32, per internal node: -1 a threshold, else the set it tests
    category_words: np.ndarray | None = None  # uint32: every set's bitset, set after set
    category_at: np.ndarray | None = None  # int32, per set + 1: where its words start
    category_min: float = 0.0  # a float32: the least value that is a category (its truncation)

    template: ClassVar[str] = "trees"

    def __post_init__(self) -> None:
        self.roots = np.ascontiguousarray(self.roots, dtype=np.int32).reshape(-1)
        self.feature = np.ascontiguousarray(self.feature, dtype=np.int32).reshape(-1)
        self.threshold = np.ascontiguousarray(self.threshold, dtype=np.float32).reshape(-1)
        self.children = np.ascontiguousarray(self.children, dtype=np.int32).reshape(-1)
        self.missing_left = np.ascontiguousarray(self.missing_left, dtype=np.uint8).reshape(-1)
        self.leaf_values = np.ascontiguousarray(self.leaf_values, dtype=np.float64)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int32).reshape(-1)
        self.baseline = np.ascontiguousarray(self.baseline, dtype=np.float64).reshape(-1)
        n = self.feature.size
        zero = np.zeros(n) if self.zero_missing is None else self.zero_missing
        self.zero_missing = np.ascontiguousarray(zero, dtype=np.uint8).reshape(-1)
        self._category_arrays(n)
        if self.link not in LINKS or self.precision not in PRECISIONS:
            raise ValueError(f"unknown link {self.link!r} or precision {self.precision!r}")
        if self.zero_missing.size != n or not 0.0 <= self.zero_band == float(np.float32(self.zero_band)):
            raise ValueError("zero_missing needs one flag per internal node, zero_band a float32 >= 0")
        if self.precision == "float" and not (_float32(self.leaf_values) and _float32(self.baseline)):
            raise ValueError("float sums need float32 leaf values and baseline")
        if self.precision == "float" and (self.divisor != 1.0 or self.link == "logistic" or self.raw_scale != 1.0):
            raise ValueError("float sums have no mean, two-column logistic or scaled link (XGBoost's have none)")
        if not (self.threshold.size == self.missing_left.size == n and self.children.size == 2 * n):
            raise ValueError("node arrays of different lengths")
        if self.leaf_values.ndim != 2 or self.offsets.size != self.roots.size:
            raise ValueError("leaf values must be (n_leaves, width), one offset per tree")
        if np.any(self.offsets + self.leaf_width > self.n_raw):
            raise ValueError("a tree adds past the last accumulator")
        expected = 2 if self.link == "logistic" else self.n_raw
        if (self.link in ("logistic", "sigmoid") and self.n_raw != 1) or self.width != expected:
            raise ValueError(f"{self.link} of {self.n_raw} sums does not give {self.width} outputs")

    def _category_arrays(self, n: int) -> None:
        """The categorical arrays as their types (none: no node is categorical), checked against each other."""
        sets = np.full(n, -1) if self.category_set is None else self.category_set
        self.category_set = np.ascontiguousarray(sets, dtype=np.int32).reshape(-1)
        words = np.zeros(0) if self.category_words is None else self.category_words
        self.category_words = np.ascontiguousarray(words, dtype=np.uint32).reshape(-1)
        at = np.zeros(1) if self.category_at is None else self.category_at
        self.category_at = np.ascontiguousarray(at, dtype=np.int32).reshape(-1)
        n_sets, sizes = self.category_at.size - 1, np.diff(self.category_at)
        if self.category_set.size != n or np.any(self.category_set >= n_sets) or np.any(self.category_set < -1):
            raise ValueError("category_set needs one set (or -1) per internal node, of the sets category_at holds")
        if self.category_at[0] != 0 or self.category_at[-1] != self.category_words.size or np.any(sizes < 1):
            raise ValueError("category_at must cut category_words into sets of one word or more")
        if np.any(sizes > (MAX_CATEGORY + 32) // 32) or self.category_min != float(np.float32(self.category_min)):
            raise ValueError(f"a set beyond category {MAX_CATEGORY}, or a category_min that is not a float32")
        if np.any(self.zero_missing[self.category_set >= 0]):
            raise ValueError("a categorical split cannot count a band around zero as missing")

    @property
    def n_trees(self) -> int:
        return int(self.roots.size)

    @property
    def n_internal(self) -> int:
        return int(self.feature.size)

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_values.shape[0])

    @property
    def n_nodes(self) -> int:
        return self.n_internal + self.n_leaves

    @property
    def leaf_width(self) -> int:
        return int(self.leaf_values.shape[1])

    @property
    def n_raw(self) -> int:
        return int(self.baseline.size)

    def refusal(self) -> str | None:
        """Leaf values and the baseline must be finite; a threshold may be infinite (NaN split from numbers)."""
        finite = np.all(np.isfinite(self.leaf_values)) and np.all(np.isfinite(self.baseline))
        return None if finite else "leaf values or the baseline contain NaN or infinity"

    @property
    def routes_missing(self) -> bool:
        """Some node sends NaN left: the C must test for it (else NaN fails every ``<=`` and goes right)."""
        return bool(self.missing_left.any())

    @property
    def routes_zero(self) -> bool:
        """Some node counts a band around zero as missing: the C tests for it there."""
        return bool(self.zero_band > 0.0 and self.zero_missing.any())

    @property
    def categorical(self) -> bool:
        """Some node tests a set of categories: the C carries the sets and a membership test."""
        return bool(np.any(self.category_set >= 0))

    @property
    def n_sets(self) -> int:
        return int(self.category_at.size - 1)

    @property
    def offset_free(self) -> bool:
        """Every tree adds from the first accumulator on (forests, one output): no offsets array needed."""
        return not self.offsets.any()

    def describe(self) -> str:
        link = "" if self.link == "identity" else f", {self.link}"
        mean = f", mean of {self.n_trees}" if self.divisor != 1.0 else ""
        n_cat = int(np.count_nonzero(self.category_set >= 0))
        cats = f", {n_cat:,} categorical splits" if n_cat else ""
        return (
            f"{self.n_trees:,} trees, {self.n_nodes:,} nodes ({self.n_leaves:,} leaves{cats}), depth {self.depth}"
            f"{mean}{link}"
        )

    def out_width(self, in_widths: list[int]) -> int:
        """Its link's outputs, from a row holding every feature a node reads."""
        return self.width if in_widths[0] > int(self.feature.max(initial=-1)) else -1

    def file_helpers(self) -> tuple[str, ...]:
        return ("shared",)  # its sums, one function for every instruction-set variant

    def flops(self, in_widths: list[int]) -> int:
        """Per call: one comparison per level of every tree, one add per leaf value, the link's work."""
        link = {"identity": 0, "exp": 1, "logistic": 4, "sigmoid": 4, "softmax": 4 * self.width}[self.link]
        return self.n_trees * (self.depth + self.leaf_width) + link

    def boundary_rows(self, n_inputs: int, rng: np.random.Generator, limit: int = 2000) -> np.ndarray:
        """Rows that sit exactly on thresholds (the last value sent left and the first sent right) in
        one feature, random elsewhere; every categorical split's categories and their edges (``_category_rows``);
        and, when the model routes missing values, rows with NaNs."""
        numeric = np.flatnonzero(self.category_set < 0)
        picked = rng.choice(numeric, min(numeric.size, limit), replace=False) if numeric.size else []
        rows = self._category_rows(n_inputs, rng, limit)
        for node in picked:
            t = self.threshold[node]
            for value in (t, np.nextafter(t, np.float32(np.inf))):
                if not np.isfinite(value):  # a split of NaN from all numbers: no number on it
                    continue
                row = rng.standard_normal(n_inputs).astype(np.float32)
                row[self.feature[node]] = value
                rows.append(row)
        if self.routes_zero:  # the band's edges, on both sides, and zero itself
            band = np.float32(self.zero_band)
            edges = [band, np.nextafter(band, np.float32(1)), -band, -np.nextafter(band, np.float32(1)), 0.0]
            for node in np.flatnonzero(self.zero_missing)[:limit]:
                row = rng.standard_normal((len(edges), n_inputs)).astype(np.float32)
                row[:, self.feature[node]] = edges
                rows += list(row)
        if self.missing:
            holes = rng.standard_normal((limit // 4, n_inputs)).astype(np.float32)
            holes[rng.random(holes.shape) < 0.3] = np.nan
            rows += [*holes, np.full(n_inputs, np.nan, dtype=np.float32)]
        return np.asarray(rows, dtype=np.float32).reshape(-1, n_inputs)

    def _category_rows(self, n_inputs: int, rng: np.random.Generator, limit: int) -> list[np.ndarray]:
        """Per categorical split (at most ``limit``), rows holding in its feature: a listed category and one not,
        each plus a fraction (truncated to it), the edges of ``category_min``, -0, -1, the last category its
        words hold and the first beyond, categories past any set (up to ``MAX_CATEGORY`` + 1 and 3e38), NaN."""
        nodes = np.flatnonzero(self.category_set >= 0)
        nodes = rng.choice(nodes, min(nodes.size, limit), replace=False) if nodes.size else nodes
        low = np.float32(self.category_min)
        fixed = [low, np.nextafter(low, np.float32(-np.inf)), -0.0, -1.0, MAX_CATEGORY, MAX_CATEGORY + 1, 3e38, np.nan]
        rows = []
        for node in nodes:
            s = int(self.category_set[node])
            words = self.category_words[self.category_at[s] : self.category_at[s + 1]]
            bits = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little").astype(bool)
            listed, unlisted = np.flatnonzero(bits), np.flatnonzero(~bits)
            picks = [rng.choice(c, min(c.size, 3), replace=False) for c in (listed, unlisted) if c.size]
            values = np.concatenate([*picks, bits.size - 1 + np.arange(2)]).astype(np.float32)
            below_next = np.nextafter(values + np.float32(1), np.float32(0))  # the largest float truncated to it
            values = np.concatenate([values, values + np.float32(0.5), below_next, fixed])
            row = rng.standard_normal((values.size, n_inputs)).astype(np.float32)
            row[:, self.feature[node]] = values
            rows += list(row)
        return rows
