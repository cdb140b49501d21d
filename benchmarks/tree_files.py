"""XGBoost and LightGBM model files against tl2cgen (treelite), which reads the same files.

Both models are binary classifiers on 12 inputs, saved as their libraries save them (XGBoost JSON,
LightGBM text): 100 trees of depth 6 and 100 trees of 31 leaves (10 trees with --quick, 2 with --smoke). Ours is
the exported file's C; tl2cgen's is its generated C (one file, ``predict`` on its ``union Entry``
row), timed through a wrapper that fills that row from the float row (NaN as missing), both at
Lamarr's flags. Each C is checked against the library's ``predict`` before it is timed: tl2cgen
within 1e-6 (it sums in its own order), ours bit for bit.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
from cbench import FLAG_SETS, LAMARR, time_c
from peers import Result

from exporter import export_chain

N_INPUTS = 12
TL2CGEN_WRAPPER = """
#include "main.c"

float *tl2cgen_row(float *output, const float *input)
{{
    union Entry data[{n_in}];
    float result[1];
    for (int k = 0; k < {n_in}; ++k) {{
        if (isnan(input[k])) data[k].missing = -1;
        else data[k].fvalue = input[k];
    }}
    predict(data, 0, result);
    output[0] = result[0];
    return output;
}}
"""


def tree_files(workdir: Path, shrink: int) -> dict[str, tuple[Path, object]]:
    """The saved models by benchmark name, each with its library's predict on float32 rows; ``shrink`` times
    fewer trees (at least two)."""
    import lightgbm
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, N_INPUTS)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + 0.3 * rng.standard_normal(len(x)) > 0).astype(int)
    n = max(2, 100 // shrink)
    if not (workdir / "lightgbm.txt").exists():  # a later round times the same files
        booster = xgboost.train({"objective": "binary:logistic", "max_depth": 6}, xgboost.DMatrix(x, label=y), n)
        booster.save_model(workdir / "xgboost.json")
        gbm = lightgbm.train({"objective": "binary", "num_leaves": 31, "verbose": -1}, lightgbm.Dataset(x, y), n)
        gbm.save_model(workdir / "lightgbm.txt")
    booster = xgboost.Booster(model_file=str(workdir / "xgboost.json"))
    gbm = lightgbm.Booster(model_file=str(workdir / "lightgbm.txt"))
    return {
        "xgboost": (workdir / "xgboost.json", lambda rows: booster.predict(xgboost.DMatrix(rows))),
        "lightgbm": (workdir / "lightgbm.txt", gbm.predict),
    }


def _ours(path: Path, predict, inputs: np.ndarray, workdir: Path, rows: int, repeats: int) -> Result:
    ex = export_chain(path, name=f"ours_{path.stem}")
    (workdir / "build").mkdir(exist_ok=True)
    expected = np.asarray(predict(inputs), dtype=np.float32).reshape(len(inputs), -1)
    if not np.array_equal(ex.compile(workdir / "build", one_row=True)(inputs), expected):
        raise AssertionError(f"{path.name}: our C differs from the library")
    c_file, _ = ex.write(workdir / f"{ex.symbol}.c")
    t = time_c(c_file, ex.symbol, N_INPUTS, 1, FLAG_SETS[LAMARR], batch=True, rows=rows, repeats=repeats)
    return Result(f"lamarr-export --math fast {LAMARR}", path.stem, t.row_ns, t.batch_ns)  # run.py's OURS


def tl2cgen_peer(path: Path, predict, inputs: np.ndarray, workdir: Path, rows: int, repeats: int) -> list[Result]:
    import tl2cgen
    import treelite

    load = treelite.frontend.load_xgboost_model if path.suffix == ".json" else treelite.frontend.load_lightgbm_model
    folder = workdir / f"tl2cgen_{path.stem}"
    library = folder / "predictor.so"
    if not library.exists():  # a later round times the same code
        tl2cgen.generate_c_code(load(str(path)), dirpath=str(folder), params={"parallel_comp": 0})
        tl2cgen.export_lib(load(str(path)), toolchain="gcc", libpath=str(library), params={"parallel_comp": 0})
        got = tl2cgen.Predictor(str(library)).predict(tl2cgen.DMatrix(inputs)).reshape(len(inputs), -1)
        if not np.allclose(got, np.asarray(predict(inputs)).reshape(len(inputs), -1), rtol=0, atol=1e-6):
            raise AssertionError(f"tl2cgen's C differs from the library on {path.name}")
    source = folder / "row.c"
    source.write_text(TL2CGEN_WRAPPER.format(n_in=N_INPUTS))
    t = time_c(source, "tl2cgen_row", N_INPUTS, 1, FLAG_SETS[LAMARR], batch=False, rows=rows, repeats=repeats)
    return [Result(f"tl2cgen {version('tl2cgen')} {LAMARR} (a float-row wrapper)", path.stem, t.row_ns)]


def tree_file_results(attempt, workdir: Path, shrink: int, rows: int, repeats: int) -> list[Result]:
    """Ours and tl2cgen's rows for the two files; ``attempt`` turns a missing library into an "unavailable" row."""
    inputs = np.random.default_rng(1).standard_normal((rows, N_INPUTS)).astype(np.float32)
    inputs[np.random.default_rng(2).random(inputs.shape) < 0.05] = np.nan
    try:
        files = tree_files(workdir, shrink)
    except ImportError as err:
        missing = f"{err.name} is not installed"
        return [Result("lamarr-export", name, unavailable=missing) for name in ("xgboost", "lightgbm")]
    results = []
    for name, (path, predict) in files.items():
        results.append(_ours(path, predict, inputs, workdir, rows, repeats))
        results += attempt("tl2cgen", name, tl2cgen_peer, path, predict, inputs, workdir, rows, repeats)
    return results


def main() -> int:
    """A short run on its own: ``python benchmarks/tree_files.py [--quick]`` prints each row and tl2cgen / ours."""
    import sys
    import tempfile

    from run import attempt, pin

    quick = "--quick" in sys.argv
    print(f"pinned to core {pin(None)}; microseconds per row, best of {5 if quick else 21} passes of 2000 rows")
    with tempfile.TemporaryDirectory(prefix="lamarr-bench-") as tmp:
        results = tree_file_results(attempt, Path(tmp), 10 if quick else 1, 2000, 5 if quick else 21)
    for r in results:
        print(f"  {r.model:9} {r.name:60} {r.unavailable or f'{r.row_ns / 1000:.3f}'}")
    for model in ("xgboost", "lightgbm"):
        ours, peer = ([r.row_ns for r in results if r.model == model and r.name.startswith(k)] for k in ("lam", "tl2"))
        if ours and peer and ours[0] and peer[0]:
            print(f"{model}: tl2cgen / ours = {peer[0] / ours[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
