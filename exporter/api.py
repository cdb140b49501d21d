"""The Python API: the CLI's steps, one by one (load -> IR -> C source -> compiled callable -> parity).

    >>> from exporter import export_keras
    >>> ex = export_keras("examples/efficiency.keras")      # frontend + IR
    >>> ex.source.c[:40]                                      # backend (parity not yet known)
    >>> model = ex.compile()                                  # toolchain: this CPU's variant, numpy rows -> C
    >>> report = ex.check(model)                              # parity against Keras
    >>> ex.write("efficiency.c", report)                      # .c and .h, atomically

``export_chain`` does the same for a whole Lamarr chain: log columns, scikit-learn preprocessing,
the network, an output activation and the inverse target transform."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from exporter.backend import CSource, render
from exporter.backend.column_names import name_fitted
from exporter.backend.headline import headline
from exporter.backend.naming import symbol_for
from exporter.build.toolchain import CompiledModel, build
from exporter.check.compare import ParityReport, check_parity
from exporter.check.criteria import judge_chain, nudge
from exporter.check.inputs import DEFAULT_SAMPLES, chain_inputs, discrete_columns, in_chunks, noise_rows
from exporter.check.verdicts import Criterion
from exporter.common.errors import ExportError, Float64Unavailable, InputError, NotInvertible
from exporter.common.files import write_atomically
from exporter.common.options import (
    DEFAULT_ATOL,
    DEFAULT_CRITERION,
    DEFAULT_DISPATCH,
    DEFAULT_REAL,
    DEFAULT_RTOL,
    DEFAULTS,
    Options,
)
from exporter.common.plural import count
from exporter.frontends.chain_steps import (
    activate,
    load_network,
    load_transformer,
    log_stage,
    name_of,
    recorded_width,
    step_label,
)
from exporter.frontends.loaded import LoadedModel
from exporter.frontends.sklearn.trust import Trust
from exporter.ir import Activation, Graph
from exporter.ir.chain import OUTPUT_ACTIVATIONS, Chain, repeated_activation, with_output_activation

Reference = Callable[..., np.ndarray]  # rows (and a generator's noise rows) -> rows


@dataclass
class Export:
    """One chain on its way to C: its IR, its symbol, the Python reference and the rendered source.

    ``loaded`` is the network as its frontend read it (for the trace's intermediate values), and
    ``prepare`` maps raw rows to the network's inputs in Python (the preprocessing).
    ``c_edit`` is a test hook: it edits the C text before every compile (the production build and
    the trace builds alike), so a test can break one weight and check that the trace finds it.
    It never touches what ``write`` writes. ``options`` are how its C is written (``math``, ``dtype``,
    ``dispatch``) and how ``export_spec`` judges its parity.
    """

    chain: Chain
    symbol: str
    reference: Reference  # raw float32 rows (, noise rows) -> final outputs, computed by the Python frameworks
    framework: str  # e.g. "Keras": quoted in generated files, so no version here
    framework_version: str = ""  # e.g. "Keras 3.15.1 (tensorflow backend)": for reports only
    loaded: LoadedModel | None = None
    prepare: Reference | None = None
    options: Options = DEFAULTS
    scikinc_names: bool = False  # each step also under scikinC's name (SYMBOL_tX, SYMBOL_dnn, SYMBOL_tY_inverse)
    source: CSource = field(init=False)
    c_edit: Callable[[str], str] | None = None
    # The Python steps after the network, for the trace: network outputs -> each step's values, labelled
    # with the IR value it writes (the output activation) or its ops' name prefix (a target transform step).
    after_network: Callable[[np.ndarray], list[tuple[str, np.ndarray]]] | None = None
    warnings: list[str] = field(default_factory=list)  # things the user may not have meant, told on stderr
    # the chain in float64 by its frameworks (rows[, noise], rng=None: nudged where float32 rounds; criteria.py)
    reference64: Callable[..., np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.source = self.render()

    def __repr__(self) -> str:
        steps = count(sum(len(stage.ops) for stage, _ in self.chain.stages), "step")
        return f"<Export {headline(self.symbol, self.chain, steps, self.source)}; from {self.chain.source}>"

    def render(self, parity: str = "not checked") -> CSource:
        return render(self.chain, self.symbol, parity, self.options, self.scikinc_names)

    @property
    def graph(self) -> Graph | None:
        """The network, if the chain has one."""
        return self.chain.net

    @property
    def model(self) -> Export:
        """Itself: the export of one model (a pipeline's export has none; ``exporter.check.subject.Exported``)."""
        return self

    @property
    def parts(self) -> list[Export]:
        """Itself: the one model whose code it runs."""
        return [self]

    def compile(
        self, workdir: str | os.PathLike[str] | None = None, one_isa: bool = True, one_row: bool = False
    ) -> CompiledModel:
        """Built for calls from Python: the variant this CPU runs (``one_isa=False``: all, dispatched);
        ``one_row``: without the blocks of rows that make ``batch`` fast, for checks that call one row at a
        time (as ``check`` does): about half the compile, the same bits."""
        chain = self.chain
        n_in, n_out, n_noise = chain.n_inputs, chain.n_outputs, chain.n_noise
        return self.compile_source(self.source, n_in, n_out, workdir, n_noise, one_isa, one_row)

    def compile_source(
        self,
        source: CSource,
        n_inputs: int,
        n_outputs: int,
        workdir: str | os.PathLike[str] | None = None,
        n_noise: int = 0,
        one_isa: bool = False,
        one_row: bool = False,
    ) -> CompiledModel:
        """Compile a rendering of this chain or of a part of it, hook applied (flags: see ``build``)."""
        return build(
            self.edited(source), n_inputs, n_outputs, Path(workdir) if workdir else None, n_noise, one_isa, one_row
        )

    def edited(self, source: CSource) -> CSource:
        """``source`` with the test hook ``c_edit`` applied: what every build of this chain compiles."""
        return replace(source, c=self.c_edit(source.c)) if self.c_edit is not None else source

    def noise(self, n_rows: int, seed: int = 1) -> np.ndarray | None:
        """Standard-normal noise rows for a generator (None for a deterministic model)."""
        return noise_rows(n_rows, self.chain.n_noise, seed) if self.chain.n_noise else None

    def network_inputs(self, rows: np.ndarray) -> np.ndarray:
        """What the network receives for raw ``rows``, computed in Python."""
        return np.asarray(rows, dtype=np.float32) if self.prepare is None else self.prepare(rows)

    def inputs(self, samples: int = DEFAULT_SAMPLES, user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        return chain_inputs(self.chain, samples, seed, user_rows)

    def expect(self, rows: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """``self.reference`` on ``rows``, a chunk at a time: ``check``'s ``expected``, computed while the C compiles
        (``exporter.check.subject.Exported``)."""
        return in_chunks(self.reference, rows, *([] if noise is None else [noise]))

    def check(  # the report keeps the arrays, for plots and the trace
        self,
        compiled: CompiledModel | None = None,
        inputs: np.ndarray | None = None,
        atol: float = DEFAULT_ATOL,
        rtol: float = DEFAULT_RTOL,
        noise: np.ndarray | None = None,
        expected: np.ndarray | None = None,
        criterion: str = DEFAULT_CRITERION,
    ) -> ParityReport:
        """Parity on ``inputs``; a generator gets ``noise`` (default: ``self.noise``), the same rows on both sides.

        ``expected``: ``self.reference`` on those rows, when it was computed already (``expect``, while the C
        compiled).
        ``criterion``: ``"float32"`` judges against the float64 reference (exporter/check/criteria.py), rows outside
        the fitted range apart; ``"fixed"``: ``|c - ref| <= atol + rtol |ref|`` on every row.
        """
        rule = Criterion(criterion, atol, rtol)  # checked before anything is compiled
        compiled = compiled or self.compile(one_row=True)
        rows = self.inputs() if inputs is None else inputs
        if noise is None:
            noise = self.noise(len(rows))
        reference = self.reference if expected is None else np.asarray(expected)
        report = check_parity(compiled, reference, rows, rule.atol, rule.rtol, self.framework, noise)
        if rule.name == "fixed":
            return report
        return judge_chain(report, self.reference64, self.chain, rows)

    def final_source(self, report: ParityReport | None) -> CSource:
        """The source with the parity verdict in its banner (the code itself is unchanged)."""
        return self.render(report.verdict() if report else "not checked")

    def files(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> dict[Path, bytes]:
        """``c_path`` and the header beside it, with their contents: for ``write_atomically``, with other files."""
        c_path = Path(c_path)
        source = self.final_source(report)
        return {c_path: source.c.encode(), c_path.with_suffix(".h"): source.h.encode()}

    def write(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> tuple[Path, Path]:
        """Write ``c_path`` and the header beside it; each appears whole or not at all."""
        c_path = Path(c_path)
        write_atomically(self.files(c_path, report))
        return c_path, c_path.with_suffix(".h")


def export_keras(
    model: Any,
    name: str | None = None,
    math: str | None = None,
    dtype: str = DEFAULT_REAL,
    dispatch: str = DEFAULT_DISPATCH,
) -> Export:
    """Read a Keras model (``.keras``/``.h5`` path or live ``keras.Model``) into an ``Export``.

    ``math="libm"`` makes the C call libm's ``tanhf``, ``expf``... instead of the default
    inline approximations (``"fast"``), for bit-for-bit libm results at a loss of speed;
    ``math="fma"`` keeps them and fuses the network's multiply-adds where the hardware has FMA
    (the fma contract: docs/c-contract.md).
    ``dtype="double"`` computes in double from the same IR (symbol ``<stem>_double`` by default,
    libm's double functions). ``dispatch="none"`` writes the network code once, for whatever the
    compiler targets, instead of once per x86-64 level chosen at run time."""
    return export_chain(model, name=name, math=math, dtype=dtype, dispatch=dispatch)


def export_chain(
    model: Any = None,
    *,
    preprocess: Sequence[Any] = (),
    log_columns: Sequence[int] = (),
    target_transform: Any = None,
    output_activation: str | None = None,
    name: str | None = None,
    math: str | None = None,
    dtype: str | None = None,
    noise: int = 0,
    trust: Sequence[str] = (),
    dispatch: str | None = None,
    trees: str | None = None,
    scikinc_names: bool = False,
    options: Options | None = None,
) -> Export:
    """A Lamarr chain: raw inputs -> log(columns) -> preprocess... -> network -> activation -> inverse target.

    ``model`` is a Keras file or model, a tree model (a fitted scikit-learn estimator or its file, an
    XGBoost or LightGBM model file: docs/trees.md), or None for preprocessing alone; transformers are
    fitted scikit-learn objects or their .pkl/.joblib/.skops files. ``trust`` names your own
    modules whose classes and functions those files may load (``["lamarr_utils"]``), see
    docs/custom-preprocessing.md. A generator (a Keras model with two inputs, conditions and noise,
    or ``noise`` > 0 trailing noise entries in its one input) gets the caller's noise after the
    preprocessing: ``SYMBOL(output, input, random)``.
    ``scikinc_names`` also exports each step under the name scikinC gave it, for Lamarr's glue.
    ``math``, ``dtype`` and ``dispatch`` are ``export_keras``'s (default ``"fast"``, or ``"libm"`` for
    double; ``"float"``; ``"auto"``); ``trees`` lays out a tree model's C (``"auto"``, see docs/trees.md);
    ``options`` gives them, and the parity rule ``export_spec`` applies, as one ``Options`` instead.
    """
    from exporter.frontends.sklearn import reference as sk
    from exporter.frontends.sklearn import transformer_stage

    options = Options.whole_or_keywords(options, math=math, dtype=dtype, dispatch=dispatch, trees=trees)
    symbol = symbol_for(name, model if model is not None else (preprocess[0] if preprocess else "model"), options.dtype)
    if output_activation not in (None, *OUTPUT_ACTIVATIONS):
        choices = ", ".join(OUTPUT_ACTIVATIONS)
        raise InputError("output_activation", f"{output_activation!r}: choose one of {choices}")
    if noise < 0 or (noise and model is None):
        raise InputError("noise", f"{noise}: a generator needs a network and at least one noise entry")
    trust = Trust.of(trust).modules  # checked before any file is read
    pre_transformers = [load_transformer(t, trust) for t in preprocess]
    net_loaded = load_network(model, noise) if model is not None else None
    if noise and net_loaded is not None and net_loaded.graph.n_noise != noise:
        raise InputError("noise", f"{noise}: only Keras generators take noise ({name_of(model)} does not)")
    net = net_loaded.graph if net_loaded else None
    inner_pre = net_loaded.pre if net_loaded else None
    notes = []
    if net is not None and output_activation:
        notes = [note] if (note := repeated_activation(net, output_activation)) else []
        net = with_output_activation(net, Activation(output_activation))

    net_inputs = (inner_pre.n_inputs if inner_pre else net.n_inputs) if net is not None else 0
    # a stateless transformer that records no width (FunctionTransformer(None)) takes the width it is given
    n_inputs = recorded_width(pre_transformers[0][0], net_inputs) if pre_transformers else net_inputs
    pre = log_stage(log_columns, n_inputs) if log_columns else None
    for est, stem in pre_transformers:
        stage = transformer_stage(est, stem, pre.n_outputs if pre else n_inputs)
        pre = stage if pre is None else pre.then(stage)
    if inner_pre is not None:
        pre = inner_pre if pre is None else pre.then(inner_pre)
    post = None
    target = load_transformer(target_transform, trust) if target_transform is not None else None
    if target is not None:
        given = net.n_outputs if net is not None else pre.n_outputs if pre is not None else 0
        try:
            post = transformer_stage(*target, recorded_width(target[0], given)).inverse()
        except NotInvertible as err:
            raise InputError("target_transform", f"{name_of(target_transform)}: {err}") from None
    if pre is None and net is None:
        raise ExportError("nothing to export: give a model or at least one transformer")
    sources = [name_of(t) for t in (model, *preprocess, target_transform) if t is not None]
    labels = {
        "preprocessing": ", ".join(
            step_label(t, est) for t, (est, _) in zip(preprocess, pre_transformers, strict=True)
        ),
        "network": name_of(model) if model is not None else "",
        "target transform": step_label(target_transform, target[0]) if target is not None else "",
    }
    chain = Chain(
        pre=pre, net=net, post=post, source=" + ".join(sources), labels={k: v for k, v in labels.items() if v}
    )
    name_fitted(chain, [est for est, _ in pre_transformers], target[0] if target is not None else None)

    def prepare(rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float64)
        if log_columns:
            x = x.copy()
            with np.errstate(all="ignore"):
                x[:, list(log_columns)] = np.log(x[:, list(log_columns)])
        for est, _ in pre_transformers:
            x = sk.forward(est, x)
        return x

    def after_network(y: np.ndarray) -> list[tuple[str, np.ndarray]]:
        x, values = np.asarray(y, dtype=np.float64), []
        if net is not None and output_activation:
            x = activate(x, output_activation)
            values.append((net.output, x))  # labelled with the IR value the output activation writes
        return values + (sk.inverse_steps(target[0], target[1], x) if target is not None else [])

    def reference(rows: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        x = prepare(rows)
        if net_loaded is not None:
            x = net_loaded.run(x.astype(np.float32), *noise)
        values = after_network(x)
        return np.asarray(values[-1][1] if values else x, dtype=np.float32)

    def reference64(rows: np.ndarray, *noise: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The chain in float64: no rounding to float32 between the steps (``rng``: nudged where it rounds)."""
        x = nudge(prepare(rows), rng, discrete_columns(net_loaded.graph if net_loaded else None))  # masks stay
        if net_loaded is not None:
            if net_loaded.reference64 is None:
                raise Float64Unavailable(f"{net_loaded.framework} gives no float64 reference for {chain.source}")
            x = nudge(activate(net_loaded.float64(nudged=rng is not None)(x, *noise), output_activation), rng)
        return sk.inverse(target[0], x) if target is not None else x

    frameworks = [net_loaded.framework] if net_loaded else []
    versions = [f"{net_loaded.framework} {net_loaded.framework_version}"] if net_loaded else []
    if (pre_transformers or target is not None) and "scikit-learn" not in frameworks:
        import sklearn

        frameworks.append("scikit-learn")
        versions.append(f"scikit-learn {sklearn.__version__}")
    prepared = (lambda rows: prepare(rows).astype(np.float32)) if pre is not None else None
    framework = " + ".join(frameworks) or "numpy"
    parts = (chain, symbol, reference, framework, ", ".join(versions), net_loaded, prepared, options)
    ex = Export(*parts, scikinc_names, after_network=after_network, reference64=reference64)
    ex.warnings += notes
    return ex


def export_flax(
    model: Any,
    params: Any = None,
    *,
    n_inputs: int,
    name: str | None = None,
    preprocess: Sequence[Any] = (),
    log_columns: Sequence[int] = (),
    target_transform: Any = None,
    output_activation: str | None = None,
    math: str | None = None,
    dtype: str | None = None,
    trust: Sequence[str] = (),
    dispatch: str | None = None,
    scikinc_names: bool = False,
    options: Options | None = None,
) -> Export:
    """A Flax model (linen module + params, nnx module, or ``f(params, x)``) and its chain, like ``export_chain``.

    ``n_inputs`` is the width of one row the model receives (after any ``preprocess``).
    """
    from exporter.frontends.flax import load_flax

    options = Options.whole_or_keywords(options, math=math, dtype=dtype, dispatch=dispatch)
    source = name or getattr(model, "__name__", type(model).__name__)
    symbol = symbol_for(name, source, options.dtype)
    loaded = load_flax(model, params, n_inputs, source)
    return export_chain(
        loaded,
        preprocess=preprocess,
        log_columns=log_columns,
        target_transform=target_transform,
        output_activation=output_activation,
        name=symbol,
        trust=trust,
        scikinc_names=scikinc_names,
        options=options,
    )


def export_transformer(transformer: Any, name: str | None = None, trust: Sequence[str] = ()) -> Export:
    """A fitted transformer alone: ``SYMBOL`` (transform) and ``SYMBOL_inverse`` where it has one."""
    return export_chain(preprocess=[transformer], name=name, trust=trust)
