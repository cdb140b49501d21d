"""The Python API: the CLI's steps, one by one (load -> IR -> C source -> compiled callable -> parity).

    >>> from exporter import export_keras
    >>> ex = export_keras("examples/efficiency.keras")      # frontend + IR
    >>> ex.source.c[:40]                                      # backend (parity not yet known)
    >>> model = ex.compile()                                  # toolchain: numpy rows -> C
    >>> report = ex.check(model)                              # parity against Keras
    >>> ex.write("efficiency.c", report)                      # .c and .h, atomically

``export_chain`` does the same for a whole Lamarr chain: log columns, scikit-learn
preprocessing, the network, an output activation and the inverse target transform.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporter.backend import CSource, render
from exporter.backend.naming import check_symbol, symbol_from_stem
from exporter.errors import ExportError
from exporter.ir import Activation, Graph
from exporter.ir.chain import Chain, with_output_activation
from exporter.ir.columns import ColumnStage, Function, NotInvertible
from exporter.parity import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES, ParityReport, check_parity
from exporter.sampling import chain_inputs
from exporter.toolchain import CompiledModel, build

OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")
Reference = Callable[[np.ndarray], np.ndarray]


@dataclass
class Export:
    """One chain on its way to C: its IR, its symbol, the Python reference and the rendered source."""

    chain: Chain
    symbol: str
    reference: Reference  # raw float32 rows -> final outputs, computed by the Python frameworks
    framework: str  # e.g. "Keras": quoted in generated files, so no version here
    framework_version: str = ""  # e.g. "Keras 3.15.1 (tensorflow backend)": for reports only
    source: CSource = field(init=False)

    def __post_init__(self) -> None:
        self.source = render(self.chain, self.symbol)

    @property
    def graph(self) -> Graph | None:
        """The network, if the chain has one."""
        return self.chain.net

    def compile(self, workdir: str | os.PathLike[str] | None = None) -> CompiledModel:
        return build(self.source, self.chain.n_inputs, self.chain.n_outputs, Path(workdir) if workdir else None)

    def inputs(self, samples: int = DEFAULT_SAMPLES, user_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        return chain_inputs(self.chain, samples, seed, user_rows)

    def check(
        self,
        compiled: CompiledModel | None = None,
        inputs: np.ndarray | None = None,
        atol: float = DEFAULT_ATOL,
        rtol: float = DEFAULT_RTOL,
    ) -> ParityReport:
        compiled = compiled or self.compile()
        rows = self.inputs() if inputs is None else inputs
        return check_parity(compiled, self.reference, rows, atol, rtol, self.framework)

    def final_source(self, report: ParityReport | None) -> CSource:
        """The source with the parity verdict in its banner (the code itself is unchanged)."""
        return render(self.chain, self.symbol, report.verdict() if report else "not checked")

    def write(self, c_path: str | os.PathLike[str], report: ParityReport | None = None) -> tuple[Path, Path]:
        """Write ``c_path`` and the header beside it; each appears whole or not at all."""
        c_path = Path(c_path)
        h_path = c_path.with_suffix(".h")
        source = self.final_source(report)
        write_atomically({c_path: source.c.encode(), h_path: source.h.encode()})
        return c_path, h_path


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name first, then rename them all into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _name_of(thing: Any) -> str:
    return Path(thing).name if isinstance(thing, (str, os.PathLike)) else f"{type(thing).__name__} (in memory)"


def _symbol(name: str | None, thing: Any) -> str:
    if name:
        return check_symbol(name)
    stem = Path(thing).stem if isinstance(thing, (str, os.PathLike)) else getattr(thing, "name", "model")
    return symbol_from_stem(stem)


def export_keras(model: Any, name: str | None = None) -> Export:
    """Read a Keras model (``.keras``/``.h5`` path or live ``keras.Model``) into an ``Export``."""
    return export_chain(model, name=name)


def _transformer(thing: Any) -> tuple[Any, str]:
    from exporter.frontends.sklearn import load_transformer_file

    if isinstance(thing, (str, os.PathLike)):
        return load_transformer_file(thing), Path(thing).stem
    return thing, type(thing).__name__


def _log_stage(columns: Sequence[int], n_inputs: int) -> ColumnStage:
    bad = [c for c in columns if not 0 <= c < n_inputs]
    if bad:
        raise ExportError(f"--log-columns {bad}: the chain takes {n_inputs} inputs (columns count from 0)")
    return ColumnStage(n_inputs, [Function("log columns", tuple(sorted(set(columns))), "log", "exp")])


def export_chain(
    model: Any = None,
    *,
    preprocess: Sequence[Any] = (),
    log_columns: Sequence[int] = (),
    target_transform: Any = None,
    output_activation: str | None = None,
    name: str | None = None,
) -> Export:
    """A Lamarr chain: raw inputs -> log(columns) -> preprocess... -> network -> activation -> inverse target.

    ``model`` is a Keras file or model (or None for preprocessing alone); transformers are
    fitted scikit-learn objects or their .pkl/.joblib/.skops files.
    """
    from exporter.frontends.sklearn import reference as sk
    from exporter.frontends.sklearn import transformer_stage

    symbol = _symbol(name, model if model is not None else (preprocess[0] if preprocess else "model"))
    if output_activation not in (None, *OUTPUT_ACTIVATIONS):
        raise ExportError(f"--output-activation {output_activation!r}: choose one of {', '.join(OUTPUT_ACTIVATIONS)}")
    pre_transformers = [_transformer(t) for t in preprocess]
    net_loaded = _load_network(model) if model is not None else None
    net = net_loaded.graph if net_loaded else None
    if net is not None and output_activation:
        net = with_output_activation(net, Activation(output_activation))

    n_inputs = (
        int(getattr(pre_transformers[0][0], "n_features_in_", 0))
        if pre_transformers
        else net.n_inputs
        if net is not None
        else 0
    )
    pre = _log_stage(log_columns, n_inputs) if log_columns else None
    for est, stem in pre_transformers:
        stage = transformer_stage(est, stem, pre.n_outputs if pre else None)
        pre = stage if pre is None else pre.then(stage)
    post = None
    target = _transformer(target_transform) if target_transform is not None else None
    if target is not None:
        try:
            post = transformer_stage(*target).inverse()
        except NotInvertible as err:
            raise ExportError(f"--target-transform {_name_of(target_transform)}: {err}") from None
    if pre is None and net is None:
        raise ExportError("nothing to export: give a model or at least one transformer")
    sources = [_name_of(t) for t in (model, *preprocess, target_transform) if t is not None]
    chain = Chain(pre=pre, net=net, post=post, source=" + ".join(sources))

    def reference(rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float64)
        if log_columns:
            x = x.copy()
            with np.errstate(all="ignore"):
                x[:, list(log_columns)] = np.log(x[:, list(log_columns)])
        for est, _ in pre_transformers:
            x = sk.forward(est, x)
        if net_loaded is not None:
            x = _activate(net_loaded.reference(x.astype(np.float32)).astype(np.float64), output_activation)
        if target is not None:
            x = sk.inverse(target[0], x)
        return x.astype(np.float32)

    frameworks = [net_loaded.framework] if net_loaded else []
    versions = [f"{net_loaded.framework} {net_loaded.framework_version}"] if net_loaded else []
    if pre_transformers or target is not None:
        import sklearn

        frameworks.append("scikit-learn")
        versions.append(f"scikit-learn {sklearn.__version__}")
    return Export(chain, symbol, reference, " + ".join(frameworks) or "numpy", ", ".join(versions))


def _load_network(model: Any) -> Any:
    from exporter.frontends.keras import load_keras

    return load_keras(model)


def _activate(y: np.ndarray, kind: str | None) -> np.ndarray:
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-y))
    if kind == "softmax":
        e = np.exp(y - y.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return y


def export_transformer(transformer: Any, name: str | None = None) -> Export:
    """A fitted transformer alone: ``SYMBOL`` (transform) and ``SYMBOL_inverse`` where it has one."""
    return export_chain(preprocess=[transformer], name=name)
