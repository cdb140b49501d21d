"""How long a user waits: ``import tensorflow`` against an export of the shipped example and ``inspect``.

Each command runs in a fresh interpreter, one after the other in every round, so the three see the
same machine load; the best of ``--repeats`` rounds is kept and the ratios are taken between those.
The export is the README's (preprocessing, network, compile, parity on 10,000+ rows), on the Keras
backend the exporter picks by itself (``KERAS_BACKEND`` unset): no TensorFlow.

    python benchmarks/startup.py [--repeats 5] [--tf-python PYTHON]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "efficiency.keras"
GOALS = {"export": 0.5, "inspect": 0.2}  # at most this fraction of `import tensorflow`


def commands(out_dir: Path, tf_python: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "exporter"]
    return {
        "import tensorflow": [tf_python, "-c", "import tensorflow"],
        "export": [*cli, str(EXAMPLE), "--preprocess", str(EXAMPLE.with_name("efficiency_tX.pkl")), "-o",
                   str(out_dir / "efficiency.c"), "--quiet"],
        "inspect": [*cli, "inspect", str(EXAMPLE), "--quiet"],
    }  # fmt: skip


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--repeats", type=int, default=5, help="rounds; the best time of each command is kept")
    p.add_argument(
        "--tf-python",
        default=sys.executable,
        help="the Python that imports TensorFlow (default: this one; run this script with the Python of a "
        "'.[keras,sklearn]' environment to time what a user installs)",
    )
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(Path(tmp), args.tf_python)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeats):
            for name, command in runs.items():
                best[name] = min(best[name], timed(command, env))
        split = _steps(runs["export"], env)
    tf = best["import tensorflow"]
    print(f"best of {args.repeats} rounds, seconds (ratio to `import tensorflow`; goal)")
    for name, seconds in best.items():
        goal = f"; goal <= {GOALS[name]}" if name in GOALS else ""
        verdict = ("met" if seconds / tf <= GOALS[name] else "NOT met") if name in GOALS else ""
        print(f"  {name:<18} {seconds:6.2f}   ({seconds / tf:.2f}{goal}) {verdict}")
    print(f"  one more export, by step:{split}")
    return 0


def _steps(command: list[str], env: dict[str, str]) -> str:
    """The export's own ``time:`` line (where the seconds go), from one more run without ``--quiet``."""
    out = subprocess.run([c for c in command if c != "--quiet"], env=env, check=True, capture_output=True, text=True)
    return next((line.split("time:", 1)[1] for line in out.stdout.splitlines() if "time:" in line), " (not printed)")


if __name__ == "__main__":
    sys.exit(main())
