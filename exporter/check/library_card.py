"""What a built library says about itself: ``SYMBOL_info`` (one JSON object), ``SYMBOL_selftest``, ``LIBRARY_symbols``.

Lamarr loads a model by symbol and is configured by hand around it (input columns in the model's order,
output names, the number of random values): a loader that cannot compare those with the library, nor tell
releases apart but by their file names, computes wrong physics without a word. So every top-level function of
an export gets, in the same file:

- ``const char *SYMBOL_info(void)``: the facts a loader needs and can compare (``info`` below): widths,
  column names (``exporter.backend.column_names``), the files it was made from and its weights by SHA-256, the parity
  verdict with its rule and tolerance, the math mode, the instruction-set variants and the contract they keep
  (``bit-identical``, or ``fma``: ``exporter.backend.isa.CONTRACTS``);
- ``int SYMBOL_selftest(void)``: the reference rows (``exporter.check.reference_rows``) run through the function,
  the number of values beyond the tolerance returned (0: pass); ``SYMBOL_selftest_row(k)`` for row k;
- a manifest's library also ``const char *const *LIBRARY_symbols(void)``, its top-level functions.

It is appended to the files written, once parity is known (``exporter.run.steps``: the build parity
checks holds the networks without it, so that it compiles while the reference rows are computed).
Nothing in it depends on the time or the paths: the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.backend.column_names import columns
from exporter.backend.library import SelfTest, render_library
from exporter.common.errors import ExportError
from exporter.common.version import __version__

if TYPE_CHECKING:
    from exporter.backend import CSource
    from exporter.check.reference_rows import ReferenceRows
    from exporter.check.subject import Exported
    from exporter.ir.weights import Weighted

SCHEMA = "lamarr-export-info/1"  # the info's "schema": a loader refuses a version it does not know
CARD_SCHEMA = "lamarr-export-plugins/1"  # the plugin card's "schema"
# the self-test's rule on its embedded rows (the export's own parity rule, float32 or fixed, is in the verdict)
RULE = "|c - ref| <= atol + rtol * |ref|, NaN only where ref is NaN"
SUFFIXES = ("_info", "_selftest", "_selftest_row")  # what each top-level symbol adds to the library
LIBRARY_SUFFIX = "_symbols"


def file_sha256(path: Path) -> str:
    """A file's SHA-256; a folder's (a SavedModel) over its files' relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode("utf-8", "surrogateescape") + b"\0")
            digest.update(file_sha256(item).encode())
        return digest.hexdigest()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_sources(paths: Iterable[Path]) -> tuple[tuple[str, str], ...]:
    """(file name, SHA-256) of each file a model was made from: names only, a path would tie the bytes to a folder."""
    return tuple((Path(p).name, file_sha256(Path(p))) for p in paths)


def weights_sha256(ops: Iterable[Weighted]) -> str:
    """The SHA-256 of every parameter array the generated code prints, in order (dtype, shape, bytes)."""
    import numpy as np

    digest = hashlib.sha256()
    for op in ops:
        for array in op.arrays:
            a = np.ascontiguousarray(array)
            digest.update(f"{a.dtype.newbyteorder('<').str}{a.shape}".encode())
            digest.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


def _ops(ex: Exported) -> list[Weighted]:
    """A model's ops, or a pipeline's stages' in call order."""
    return [op for part in ex.parts for stage, _ in part.chain.stages for op in stage.ops]


def info(
    ex: Exported, verdict: str, atol: float, rtol: float, n_rows: int, library: str | None = None
) -> dict[str, Any]:
    """The JSON object ``SYMBOL_info`` returns for export ``ex`` (a model's or a pipeline's); ``library``: the
    manifest's library whose ``LIBRARY_symbols`` lists it (None: a single model's)."""
    from exporter.backend.isa import VARIANTS, contract

    chain, parts = ex.chain, ex.parts
    inputs, outputs = columns(chain)
    sources = dict(pair for part in parts for pair in part.chain.sources)
    variants = [v.name for part in parts if part.chain.net is not None for v in VARIANTS[part.options.dispatch]]
    return {
        "schema": SCHEMA,
        "symbol": ex.symbol,
        "kind": "generative" if chain.n_noise else "plugin",
        "n_inputs": chain.n_inputs,
        "n_outputs": chain.n_outputs,
        "n_random": chain.n_noise,
        "inputs": list(inputs),
        "outputs": list(outputs),
        "exporter": f"lamarr-export {__version__}",
        "sources": [{"file": name, "sha256": digest} for name, digest in sources.items()],
        "weights_sha256": weights_sha256(_ops(ex)),
        "parity": {"verdict": verdict, "rule": RULE, "atol": _tolerance(atol), "rtol": _tolerance(rtol)}
        | {"reference": ex.framework},
        "math": ",".join(dict.fromkeys(part.options.math for part in parts)),
        "real": ex.options.dtype,
        "variants": list(dict.fromkeys(variants)) or ["baseline"],
        "contract": contract(part.options.math for part in parts),
        "selftest_rows": n_rows,
        "library": library,
    }


def _tolerance(value: float) -> float | str:
    """A tolerance as JSON can hold it: ``--rtol inf`` (any difference passes) as the string "inf"."""
    return value if math.isfinite(value) else "inf"


def info_json(data: dict[str, Any]) -> str:
    """The info as one line of ASCII JSON (keys in a fixed order: the same inputs give the same bytes)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def check_names(symbols: Sequence[str], library: str | None, where: object) -> None:
    """No top-level symbol is a name another one's info or self-test takes (``a_info`` beside ``a``),
    nor the library's list: one file cannot define a name twice."""
    taken = {s + suffix: s for s in symbols for suffix in SUFFIXES}
    if library is not None:
        taken[library + LIBRARY_SUFFIX] = f"the library {library}"
    for symbol in symbols:
        if symbol in taken:
            raise ExportError(f"{where}: {symbol!r} is also a name of {taken[symbol]}'s info or self-test: rename it")


def self_test(ex: Exported, rows: ReferenceRows, information: dict[str, Any]) -> SelfTest:
    """What the library says of ``ex``: its info (from ``infos``) and reference rows, as the template prints them."""
    chain = ex.chain
    return SelfTest(
        symbol=ex.symbol,
        info_json=info_json(information),
        real=ex.options.dtype,
        atol=rows.atol,
        rtol=rows.rtol,
        n_inputs=chain.n_inputs,
        n_outputs=chain.n_outputs,
        n_noise=chain.n_noise,
        n_rows=len(rows.inputs),
        inputs=rows.inputs.reshape(-1).tolist(),
        noise=[] if rows.noise is None else rows.noise.reshape(-1).tolist(),
        outputs=rows.outputs.reshape(-1).tolist(),
    )


def infos(
    exports: Sequence[Exported], rows: Sequence[ReferenceRows], verdicts: dict[str, str], library: str | None
) -> list[dict[str, Any]]:
    """Every export's info (``verdicts``: by symbol), as ``SYMBOL_info`` returns it."""
    return [
        info(ex, verdicts[ex.symbol], r.atol, r.rtol, len(r.inputs), library)
        for ex, r in zip(exports, rows, strict=True)
    ]


def with_library(
    source: CSource,
    exports: Sequence[Exported],
    rows: Sequence[ReferenceRows],
    information: Sequence[dict[str, Any]],
    library: str | None = None,
) -> CSource:
    """``source`` with every export's info (``information``, from ``infos``) and self-test appended."""
    from dataclasses import replace

    tests = [self_test(ex, r, data) for ex, r, data in zip(exports, rows, information, strict=True)]
    c, h = render_library(exports[0].symbol, tests, library)
    return replace(source, c=source.c + c, h=source.h + h)


def card(library_file: str, information: Sequence[dict[str, Any]]) -> str:
    """``NAME.plugins.json``: per top-level function what SQLamarr's ``Plugin``/``GenerativePlugin`` and PyLamarr
    take (library file, function, kind, input columns in order, output columns, n_random), and its info as
    ``SYMBOL_info`` of the written file returns it (``information``, from ``infos``); schema
    ``exporter/check/report/plugins.schema.json``."""
    plugins = [
        {
            "function": i["symbol"],
            "kind": i["kind"],
            "inputs": i["inputs"],
            "outputs": i["outputs"],
            "n_random": i["n_random"],
            "info": i,
        }
        for i in information
    ]
    document = {"schema": CARD_SCHEMA, "library": library_file, "plugins": plugins}
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
