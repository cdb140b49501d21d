"""Tree models against their peers, per row and in batch: tl2cgen's C (treelite), scikinC's C++ (GradientBoosting
only), m2cgen's C, scikit-learn called per row.

The models of issue 28, binary classifiers on 10 inputs, outputs as ``predict_proba``:

- ``bdt``: GradientBoostingClassifier, 100 trees of depth 3 (the BDT scikinC converts);
- ``hist``: HistGradientBoostingClassifier, 100 iterations (31 leaves per tree);
- ``forest``: RandomForestClassifier, 50 trees of depth 8;
- ``gbdt10``, ``gbdt15``: Lamarr-sized GradientBoostingClassifiers, 142 trees of depth 10 (isMuon's pions) and
  20 of depth 15 (its kaons), fitted on a smooth target of every input so that their trees are as full as a
  fit of about a minute makes them (Lamarr's, on 10^7 rows, are fuller: the table says how full these are).

Every C peer is compiled at Lamarr's flags (and -fPIC: Lamarr loads shared libraries), checked against
scikit-learn on 2,000 rows before it is timed (its largest difference is in its line; one beyond 1e-5 is marked
WRONG), then timed by the C driver. Ours is checked bit for bit, and its export (with the parity check, as the
command line runs it) and its compile are timed: the goals of issue 28 are ratios of this run.
``python benchmarks/run.py --trees`` runs these alone, with ours in every layout too.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from cbench import FLAG_SETS, LAMARR, children_cpu_s, object_of, time_c
from peers import Result, python_timings, scikinc_version

from exporter import export_chain
from exporter.common.options import TREE_LAYOUTS

ROOT = Path(__file__).resolve().parent.parent  # the exporter, from a checkout, for the command line's run
N_INPUTS = 10
FLAGS = [*FLAG_SETS[LAMARR], "-fPIC"]
OURS = f"lamarr-export --math fast {LAMARR}"  # as benchmarks/run.py names it: the reference of every ratio
PEER_TOLERANCE = 1e-5  # largest |peer - scikit-learn| of a probability that counts as agreeing
SMALL, LAMARR_SIZED = ("bdt", "hist", "forest"), ("gbdt10", "gbdt15")
GOAL_PEERS, MOONSHOT = 1.0, 1.5  # per row, small models: the fastest peer's time / ours
GOAL_TL2CGEN, GOAL_SCIKINC, GOAL_EXPORT_S = 1.4, 10.0, 30.0  # Lamarr-sized
SMOKE = 100  # run.py --smoke: the models' ``shrink`` (every part runs once, fast; its numbers say nothing)
EXPORT_SECONDS: dict[str, tuple[float, float]] = {}  # model -> (export with parity, compile -O3), measured once
FAILED: dict[tuple[str, str], list[Result]] = {}  # (peer, model) -> its "unavailable" row: not tried again
M2CGEN_WRAPPER = """
void m2cgen_model(double *input, double *output);

float *m2cgen_row(float *output, const float *input)
{{
    double in[{n_in}], out[{n_out}];
    for (int k = 0; k < {n_in}; ++k) in[k] = (double)input[k];
    m2cgen_model(in, out);
    for (int k = 0; k < {n_out}; ++k) output[k] = (float)out[k];
    return output;
}}
"""
TL2CGEN_WRAPPER = """#include "main.c"

/* One row of floats in, its outputs out (a boosted binary classifier's probability of class 1, a forest's of each
   class): tl2cgen's Entry per feature (NaN: missing), its sums zeroed. */
float *tl2cgen_row(float *output, const float *input);
float *tl2cgen_row(float *output, const float *input)
{{
    union Entry entry[{n_in}];
    double result[N_TARGET * MAX_N_CLASS] = {{0.0}};
    for (int k = 0; k < {n_in}; ++k) {{
        if (isnan(input[k])) entry[k].missing = -1;
        else entry[k].fvalue = (double)input[k];
    }}
    predict(entry, 0, result);
    for (int k = 0; k < N_TARGET * MAX_N_CLASS; ++k) output[k] = (float)result[k];
    return output;
}}
"""


@lru_cache(maxsize=2)
def tree_models(shrink: int) -> dict[str, Any]:
    """The fitted models by name, fitted once per run, with ``shrink`` times fewer trees and rows (at least two
    trees): 1 for the models above, 10 with --quick, ``SMOKE`` with --smoke."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, N_INPUTS))
    y = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + 0.3 * rng.standard_normal(len(x)) > 0).astype(int)
    n = max(2, 100 // shrink)
    models = {
        "bdt": GradientBoostingClassifier(n_estimators=n, max_depth=3, random_state=0).fit(x, y),
        "hist": HistGradientBoostingClassifier(max_iter=n, early_stopping=False, random_state=0).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=max(2, n // 2), max_depth=8, random_state=0).fit(x, y),
    }
    for name, trees, depth, rows in (("gbdt10", 142, 10, 40_000), ("gbdt15", 20, 15, 150_000)):
        big = rng.standard_normal((rows // shrink, N_INPUTS))
        target = np.sin(np.arange(1, N_INPUTS + 1) * big).sum(axis=1) + big[:, 0] * big[:, 1]
        labels = (target + 0.5 * rng.standard_normal(len(big)) > 0).astype(int)
        fit = GradientBoostingClassifier(n_estimators=max(2, trees // shrink), max_depth=depth, random_state=0)
        models[name] = fit.fit(big, labels)
    return models


def fullness(model: Any) -> str:
    """How full a GradientBoosting's trees are: their leaves over trees x 2^depth."""
    estimators = getattr(model, "estimators_", None)
    if estimators is None or not hasattr(np.ravel(estimators)[0], "tree_"):
        return ""
    trees = [e.tree_ for e in np.ravel(estimators)]
    return f"{sum(t.n_leaves for t in trees) / sum(2**t.max_depth for t in trees):.0%} full"


def check_rows() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((2000, N_INPUTS)).astype(np.float32)


def checked(source: Path, symbol: str, model: Any, n_out: int) -> tuple[float, float]:
    """Compile ``source`` (cached for the timing), load it, and compare ``symbol`` on ``check_rows`` with
    ``predict_proba``'s last ``n_out`` columns: (compile CPU seconds, largest absolute difference)."""
    import cffi

    obj, seconds = object_of(source, FLAGS)
    library = obj.with_suffix(".so")
    if not library.exists():
        linker = "g++" if source.suffix == ".cpp" else "gcc"
        subprocess.run([linker, "-shared", str(obj), "-o", str(library), "-lm"], check=True)
    ffi = cffi.FFI()
    ffi.cdef(f"float *{symbol}(float *output, const float *input);")
    fn = getattr(ffi.dlopen(str(library)), symbol)
    rows = check_rows()
    out = np.zeros((len(rows), n_out), dtype=np.float32)
    for i in range(len(rows)):
        fn(ffi.from_buffer("float[]", out[i]), ffi.from_buffer("float[]", rows[i]))
    reference = model.predict_proba(rows)[:, -n_out:].astype(np.float32)
    return seconds, float(np.max(np.abs(out.astype(np.float64) - reference)))


def agreement(diff: float, seconds: float) -> str:
    """The note of a checked peer: how far it is from scikit-learn, and its compile time when measured."""
    verdict = f"max |diff| {diff:.1e}" if diff <= PEER_TOLERANCE else f"WRONG: max |diff| {diff:.1e}"
    return verdict + (f", compile {seconds:.1f} s" if seconds else "")


def ours(model: Any, name: str, workdir: Path, rows: int, repeats: int, layouts: bool) -> list[Result]:
    """Our C in the layout auto picks (and, with ``layouts``, in every other one that can write the model)."""
    results = []
    for layout in TREE_LAYOUTS if layouts else ("auto",):
        try:
            ex = export_chain(model, name=f"ours_{name}_{layout}", trees=layout)
        except Exception as err:  # a layout that cannot write this model says why
            reason = str(err).split(" cannot write ", 1)[-1].split(": ", 1)[-1].split("; ")[0]
            results.append(Result(layout_label(layout), name, unavailable=reason[:120]))
            continue
        c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
        diff = checked(c_file, ex.symbol, model, 2)[1]
        t = time_c(c_file, ex.symbol, N_INPUTS, 2, FLAGS, batch=True, rows=rows, repeats=repeats)
        chosen = next(line for line in ex.source.c.splitlines() if " layout (" in line).rsplit("; ", 1)[-1]
        note = ("0 ULP" if diff == 0 else f"NOT EXACT: max |diff| {diff:.1e}") + f", {chosen}"
        if name in EXPORT_SECONDS and layout == "auto":
            note += ", export {:.1f} s + compile {:.1f} s".format(*EXPORT_SECONDS[name])
        results.append(Result(layout_label(layout), name, t.row_ns, t.batch_ns, note))
    return results


def layout_label(layout: str) -> str:
    return OURS if layout == "auto" else f"lamarr-export --trees {layout} {LAMARR}"


def export_seconds(model: Any, name: str, workdir: Path) -> tuple[float, float]:
    """Wall seconds of ``lamarr-export MODEL.pkl`` (parity checked, as a user runs it), and CPU seconds of
    compiling its file at -O3 as Lamarr does."""
    pkl = workdir / f"{name}.pkl"
    pkl.write_bytes(pickle.dumps(model))
    c_file = workdir / f"export_{name}.c"
    start = time.perf_counter()
    command = [sys.executable, "-m", "exporter", str(pkl), "-o", str(c_file), "--quiet"]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    export = time.perf_counter() - start
    before = children_cpu_s()
    subprocess.run(["gcc", *FLAG_SETS[LAMARR], "-c", str(c_file), "-o", str(c_file.with_suffix(".o"))], check=True)
    return export, children_cpu_s() - before


def tl2cgen_peer(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import tl2cgen
    import treelite

    folder = workdir / f"tl2cgen_{name}"
    if not folder.exists():
        tl2cgen.generate_c_code(treelite.sklearn.import_model(model), str(folder), params={})
    source = folder / "row.c"
    source.write_text(TL2CGEN_WRAPPER.format(n_in=N_INPUTS))
    header = (folder / "header.h").read_text()
    n_out = 1
    for macro in ("N_TARGET", "MAX_N_CLASS"):
        n_out *= int(re.search(rf"#define {macro} (\d+)", header).group(1))
    seconds, diff = checked(source, "tl2cgen_row", model, n_out)
    t = time_c(source, "tl2cgen_row", N_INPUTS, n_out, FLAGS, batch=False, rows=rows, repeats=repeats)
    label = f"tl2cgen {version('tl2cgen')} (treelite {version('treelite')}) {LAMARR}"
    return [Result(label, name, t.row_ns, note=agreement(diff, seconds))]


def m2cgen_peer(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import m2cgen

    source = workdir / f"m2cgen_{name}.c"
    code = m2cgen.export_to_c(model, function_name="m2cgen_model")
    source.write_text(code + M2CGEN_WRAPPER.format(n_in=N_INPUTS, n_out=2))
    seconds, diff = checked(source, "m2cgen_row", model, 2)
    t = time_c(source, "m2cgen_row", N_INPUTS, 2, FLAGS, batch=False, rows=rows, repeats=repeats)
    label = f"m2cgen {version('m2cgen')} {LAMARR} (double in/out, a float wrapper)"
    return [Result(label, name, t.row_ns, note=agreement(diff, seconds))]


def scikinc_peer(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import scikinC

    source = workdir / f"scikinc_{name}.cpp"
    source.write_text(scikinC.convert({f"scikinc_{name}": model}))
    seconds, diff = checked(source, f"scikinc_{name}", model, 2)
    t = time_c(source, f"scikinc_{name}", N_INPUTS, 2, FLAGS, batch=False, rows=rows, repeats=repeats)
    label = f"scikinC {scikinc_version()} {LAMARR.replace('-std=c99', 'g++')}"
    return [Result(label, name, t.row_ns, note=agreement(diff, seconds))]


def sklearn_peer(model: Any, name: str, inputs: np.ndarray, repeats: int) -> list[Result]:
    import sklearn

    per_row, batch = python_timings(model.predict_proba, model.predict_proba, inputs, repeats)
    return [Result(f"scikit-learn {sklearn.__version__} predict_proba", name, per_row, batch, "Python call per row")]


def tree_results(
    attempt: Any, workdir: Path, shrink: int, rows: int, repeats: int, layouts: bool = False
) -> list[Result]:
    """Every tree row of the table, one round; ``attempt`` turns a failing peer into an "unavailable" row;
    ``shrink``: as ``tree_models``."""
    inputs = np.random.default_rng(1).standard_normal((rows, N_INPUTS)).astype(np.float32)
    results: list[Result] = []
    for name, model in tree_models(shrink).items():
        timed = name in LAMARR_SIZED or shrink < SMOKE  # a smoke run times the exports the verdict reads only
        if name not in EXPORT_SECONDS and timed:
            EXPORT_SECONDS[name] = export_seconds(model, name, workdir)
        model_results = ours(model, name, workdir, rows, repeats, layouts)
        model_results[0].note += f", {fullness(model)}" if fullness(model) else ""
        results += model_results
        results += once(attempt, "tl2cgen", name, tl2cgen_peer, model, name, workdir, rows, repeats)
        results += once(attempt, "m2cgen", name, m2cgen_peer, model, name, workdir, rows, repeats)
        if name not in ("hist", "forest"):
            results += once(attempt, "scikinC", name, scikinc_peer, model, name, workdir, rows, repeats)
        results += attempt("scikit-learn", name, sklearn_peer, model, name, inputs, repeats)
    return results


def once(attempt: Any, label: str, name: str, peer: Any, *args: Any) -> list[Result]:
    """``attempt`` a peer, unless it failed in an earlier round: a compile that failed after minutes (tl2cgen's
    one file for gbdt15) would fail as slowly in every round."""
    if (label, name) not in FAILED:
        results = attempt(label, name, peer, *args)
        if any(r.unavailable for r in results):
            FAILED[(label, name)] = results
        return results
    return FAILED[(label, name)]


def tree_verdict(results: list[Result]) -> None:
    """The tree goals of issue 28, from the figures of this run (ratios of the best per-row times)."""

    def row_ns(prefix: str, model: str) -> float | None:
        """The best per-row time of ours (``OURS``: the layout auto picks) or of a peer, None if it is wrong."""
        rows = [
            r
            for r in results
            if r.model == model and (r.name == prefix if prefix == OURS else r.name.startswith(prefix))
        ]
        found = [r.row_ns for r in rows if r.row_ns]
        return None if any("WRONG" in r.note for r in rows) or not found else min(found)

    print("\nverdict, trees (issue 28; per row, ratios of the best passes of this run):")
    for model in SMALL:
        mine = row_ns(OURS, model)
        peers = {p: row_ns(p, model) for p in ("tl2cgen", "m2cgen", "scikinC")}
        timed = {p: t for p, t in peers.items() if t}
        if not mine or not timed:
            print(f"  {model}: not measured (no peer timed)")
            continue
        fastest = min(timed, key=lambda p: timed[p])
        r = timed[fastest] / mine
        ok = ("met" if r >= GOAL_PEERS else "NOT met") + (", moonshot 1.5x met" if r >= MOONSHOT else "")
        print(
            f"  {model}: ours {mine / 1000:.2f} us, fastest peer {fastest} {timed[fastest] / 1000:.2f} us: "
            f"{r:.2f}x ({ok})"
        )
    for model in LAMARR_SIZED:
        mine = row_ns(OURS, model)
        parts = []
        for peer, goal in (("tl2cgen", GOAL_TL2CGEN), ("scikinC", GOAL_SCIKINC)):
            t = row_ns(peer, model)
            if mine and t:
                parts.append(
                    f"{peer} / ours {t / mine:.1f}x ({'met' if t / mine >= goal else 'NOT met'}: >= {goal:g}x)"
                )
            else:
                parts.append(f"{peer}: not measured")
        export, compile_s = EXPORT_SECONDS.get(model, (0.0, 0.0))
        total = export + compile_s
        ok = "met" if total < GOAL_EXPORT_S else "NOT met"
        parts.append(f"export {export:.1f} s + compile {compile_s:.1f} s = {total:.1f} s ({ok}: under 30 s)")
        print(f"  {model}: ours {mine / 1000 if mine else float('nan'):.2f} us; " + "; ".join(parts))
