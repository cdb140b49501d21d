"""Tree models against their peers: m2cgen's C, scikinC's C++ (GradientBoosting only), scikit-learn per row.

Two Lamarr-sized models on 12 inputs: a binary GradientBoostingClassifier (100 trees of depth 3,
the BDT scikinC converts) and a binary RandomForestClassifier (50 trees of depth 8), outputs as
``predict_proba``. Everything at Lamarr's flags. m2cgen's C takes and returns doubles in its own
argument order, so it is timed through a wrapper that converts one row; a model m2cgen cannot
convert (it has no GradientBoosting in C) is reported unavailable with its reason.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from cbench import FLAG_SETS, LAMARR, time_c
from peers import Result, python_timings, scikinc_version

from exporter import export_chain

N_INPUTS = 12
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


def tree_models(quick: bool) -> dict[str, Any]:
    """The fitted models by benchmark name (smaller with --quick)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, N_INPUTS))
    y = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + 0.3 * rng.standard_normal(len(x)) > 0).astype(int)
    scale = 10 if quick else 1
    return {
        "bdt": GradientBoostingClassifier(n_estimators=100 // scale, max_depth=3, random_state=0).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=50 // scale, max_depth=8, random_state=0).fit(x, y),
    }


def ours(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    ex = export_chain(model, name=f"ours_{name}")
    c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
    n_out = ex.chain.n_outputs
    t = time_c(c_file, ex.symbol, N_INPUTS, n_out, FLAG_SETS[LAMARR], batch=True, rows=rows, repeats=repeats)
    return [Result(f"lamarr-export --math fast {LAMARR}", name, t.row_ns, t.batch_ns)]


def m2cgen_peer(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import m2cgen

    n_out = len(model.classes_)
    source = workdir / f"m2cgen_{name}.c"
    code = m2cgen.export_to_c(model, function_name="m2cgen_model")
    source.write_text(code + M2CGEN_WRAPPER.format(n_in=N_INPUTS, n_out=n_out))
    t = time_c(source, "m2cgen_row", N_INPUTS, n_out, FLAG_SETS[LAMARR], batch=False, rows=rows, repeats=repeats)
    label = f"m2cgen {version('m2cgen')} {LAMARR} (double in/out, a float wrapper)"
    return [Result(label, name, t.row_ns)]


def scikinc_peer(model: Any, name: str, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import scikinC

    source = workdir / f"scikinc_{name}.cpp"
    source.write_text(scikinC.convert({f"scikinc_{name}": model}))
    n_out = len(model.classes_)
    flags = FLAG_SETS[LAMARR]
    t = time_c(source, f"scikinc_{name}", N_INPUTS, n_out, flags, batch=False, rows=rows, repeats=repeats)
    return [Result(f"scikinC {scikinc_version()} {LAMARR.replace('-std=c99', 'g++')}", name, t.row_ns)]


def sklearn_peer(model: Any, name: str, inputs: np.ndarray, repeats: int) -> list[Result]:
    import sklearn

    per_row, batch = python_timings(model.predict_proba, model.predict_proba, inputs, repeats)
    return [Result(f"scikit-learn {sklearn.__version__} predict_proba", name, per_row, batch, "Python call per row")]


def tree_results(attempt: Any, workdir: Path, quick: bool, rows: int, repeats: int) -> list[Result]:
    """Every tree row of the table; ``attempt`` turns a failing peer into an "unavailable" row."""
    inputs = np.random.default_rng(1).standard_normal((rows, N_INPUTS)).astype(np.float32)
    results: list[Result] = []
    for name, model in tree_models(quick).items():
        results += ours(model, name, workdir, rows, repeats)
        results += attempt("m2cgen", name, m2cgen_peer, model, name, workdir, rows, repeats)
        if name == "bdt":
            results += attempt("scikinC", name, scikinc_peer, model, name, workdir, rows, repeats)
        results += attempt("scikit-learn", name, sklearn_peer, model, name, inputs, repeats)
    return results
