"""Export every entry of a peer table and sort it: exported with parity, refused, wrong numbers, crash.

``examine`` runs one entry in this process through the Python API, the same steps as
``lamarr-export model.keras``: the model is saved as ``.keras``, read back from the file, turned into
C, compiled (this CPU's variant) and checked against Keras under the float32 rule on ``samples``
random rows and the exporter's edge rows (four or so per input value: for a wide tensor, an evenly
strided ``samples`` of them, so that a 5040-value input checks in seconds rather than minutes). Outcomes:

- ``exported``: parity holds;
- ``refused``: an ``ExportError`` (the CLI's exit 2); ``named`` when it lists the layers it cannot
  export (``UnsupportedModelError``): those classes are aggregated into "what to do next";
- ``wrong numbers``: the C compiled and disagrees with Keras (the CLI's exit 1);
- ``crash``: anything else: an exception that is no ``ExportError`` (the CLI's internal error), a
  compiler error on generated code, the worker process dying (a fault in the C) or a timeout;
- ``not built``: Keras 3 itself cannot build or save the peer's configuration (not counted for or
  against the exporter).

``run_all`` runs the entries in worker processes (``jobs`` of them), each entry under a time limit
counted from when its worker is ready (Keras imported): a worker past it, or dead, is replaced and the
entry counted as a crash.
"""

from __future__ import annotations

import multiprocessing
import queue
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from peer_suites import Entry

OUTCOMES = ("exported", "refused", "wrong numbers", "crash", "not built")
STARTUP_SECONDS = 600  # a worker's imports (TensorFlow) on a loaded machine: not part of any model's time


@dataclass
class Outcome:
    name: str
    group: str
    outcome: str
    detail: str = ""  # the first lines of the refusal, parity verdict or error
    classes: dict[str, str] = field(default_factory=dict)  # each refused layer class (when named): its problem
    named: bool = False
    seconds: float = 0.0


def _lines(text: str, n: int = 3) -> str:
    return " | ".join(line.strip() for line in str(text).strip().splitlines()[:n])[:600]


def _rows(rows: np.ndarray, samples: int) -> np.ndarray:
    """The random rows (first ``samples``) and at most ``samples`` of the edge rows after them, evenly strided."""
    edges = rows[samples:]
    stride = max(1, -(-len(edges) // samples))
    return np.concatenate([rows[:samples], edges[::stride]])


def examine(entry: Entry, workdir: Path, samples: int = 1000, c_edit: Callable[[str], str] | None = None) -> Outcome:
    """Build, save, export, compile and check ``entry`` in ``workdir``. ``c_edit``: ``Export.c_edit``,
    the test hook that edits the C before it compiles (a wrong number on purpose)."""
    from exporter import export_keras
    from exporter.common.errors import ExportError, UnsupportedModelError
    from exporter.frontends.keras.load import import_keras

    start = time.perf_counter()

    def outcome(kind: str, detail: str = "", **more: Any) -> Outcome:
        return Outcome(entry.name, entry.group, kind, detail, seconds=round(time.perf_counter() - start, 2), **more)

    keras = import_keras()
    path = workdir / "model.keras"
    try:
        entry.model(keras).save(path)
    except Exception as err:  # the peer's configuration, not the exporter
        return outcome("not built", f"{type(err).__name__}: {_lines(err, 1)}")
    try:
        ex = export_keras(path)
        ex.c_edit = c_edit
        report = ex.check(ex.compile(workdir, one_row=True), inputs=_rows(ex.inputs(samples), samples))
    except UnsupportedModelError as err:
        classes = {_blocker(p.cls, p.reason): str(p) for p in reversed(err.problems)}
        return outcome("refused", _lines("\n".join(map(str, err.problems))), classes=classes, named=True)
    except ExportError as err:
        return outcome("refused", _lines(str(err).replace(str(path), "model.keras")))
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1]
        return outcome("crash", f"{type(err).__name__}: {_lines(err)} (at {Path(where.filename).name}:{where.lineno})")
    if report.passed:
        return outcome("exported")
    return outcome("wrong numbers", _lines(report.verdict()))


def _blocker(cls: str, reason: str) -> str:
    """What stands in the way: the layer class, or "(several inputs)" for the model-level refusal of a
    model of several inputs (by design so far: the C takes one input row)."""
    return "(several inputs)" if cls in ("Functional", "InputLayer", "Sequential") and "input" in reason else cls


def _serve(conn: Any, samples: int) -> None:
    """A worker: says it is ready once Keras is imported, then entry names in, outcomes (as dicts) out,
    until ``None``."""
    from exporter.frontends.keras.load import import_keras

    import_keras()
    entries = {e.name: e for e in all_entries()}
    conn.send("ready")
    while (name := conn.recv()) is not None:
        with tempfile.TemporaryDirectory(prefix="yardstick-") as tmp:
            conn.send(asdict(examine(entries[name], Path(tmp), samples)))


class _Worker:
    def __init__(self, samples: int):
        self.samples, self.process, self.conn = samples, None, None

    def run(self, entry: Entry, timeout: float) -> Outcome:
        if self.process is None:
            context = multiprocessing.get_context("spawn")
            self.conn, child = context.Pipe()
            self.process = context.Process(target=_serve, args=(child, self.samples), daemon=True)
            self.process.start()
            if not self.conn.poll(max(timeout, STARTUP_SECONDS)) or self.conn.recv() != "ready":
                raise RuntimeError(f"a worker did not start within {max(timeout, STARTUP_SECONDS)} s")
        start = time.perf_counter()
        self.conn.send(entry.name)
        try:
            if self.conn.poll(timeout):
                return Outcome(**self.conn.recv())
            detail = f"timeout: no verdict after {timeout:.0f} s"
        except EOFError:
            detail = f"the worker process died (exit code {self.process.exitcode})"
        self.stop()
        return Outcome(entry.name, entry.group, "crash", detail, seconds=round(time.perf_counter() - start, 2))

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
            self.process = None


def run_all(
    entries: list[Entry], jobs: int, samples: int, timeout: float, report: Callable[[int, Outcome], None]
) -> list[Outcome]:
    """Every entry through ``jobs`` workers; ``report(done, outcome)`` after each; outcomes in table order."""
    todo: queue.Queue[Entry] = queue.Queue()
    for entry in entries:
        todo.put(entry)
    results: dict[str, Outcome] = {}
    lock = threading.Lock()

    def drain() -> None:
        worker = _Worker(samples)
        try:
            while True:
                try:
                    entry = todo.get_nowait()
                except queue.Empty:
                    return
                result = worker.run(entry, timeout)
                with lock:
                    results[entry.name] = result
                    report(len(results), result)
        finally:
            if worker.process is not None:
                worker.conn.send(None)
            worker.stop()

    threads = [threading.Thread(target=drain) for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[e.name] for e in entries]


PEERS = ("frugally-deep", "keras2c")


def entries_of(peer: str) -> list[Entry]:
    """The table of ``peer`` (one of ``PEERS``)."""
    from peer_suites import frugally_deep, keras2c

    return {"frugally-deep": frugally_deep.ENTRIES, "keras2c": keras2c.ENTRIES}[peer]


def all_entries() -> list[Entry]:
    return [e for peer in PEERS for e in entries_of(peer)]


def summarize(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Counts per group and overall, the refused layer classes (most models first; ``alone``: the models
    that class alone stands in the way of), the failures by name."""
    outcomes = list(outcomes)
    groups: dict[str, Counter[str]] = {}
    for o in outcomes:
        groups.setdefault(o.group, Counter())[o.outcome] += 1
    total = Counter(o.outcome for o in outcomes)
    layers: Counter[str] = Counter(c for o in outcomes for c in o.classes)
    alone: Counter[str] = Counter(c for o in outcomes if len(o.classes) == 1 for c in o.classes)
    example = {c: line for o in reversed(outcomes) for c, line in o.classes.items()}
    unnamed = Counter(o.detail for o in outcomes if o.outcome == "refused" and not o.named)
    return {
        "models": len(outcomes),
        "total": {k: total[k] for k in OUTCOMES},
        "groups": {g: {"models": sum(c.values()), **{k: c[k] for k in OUTCOMES}} for g, c in groups.items()},
        "refused_layers": [
            {"class": c, "models": n, "alone": alone[c], "example": example[c]} for c, n in layers.most_common()
        ],
        "refused_unnamed": [{"reason": r, "models": n} for r, n in unnamed.most_common()],
        "failures": [asdict(o) for o in outcomes if o.outcome in ("wrong numbers", "crash", "not built")],
    }
