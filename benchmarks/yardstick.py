"""The peers' own test suites as our yardstick (issue 29, item 6): how many of frugally-deep's and
keras2c's test models lamarr-export exports with parity, and why it refuses the others.

    python benchmarks/yardstick.py                      # both peers, every model
    python benchmarks/yardstick.py --peer keras2c --only Conv --jobs 2
    python benchmarks/yardstick.py --every 4            # a deterministic quarter: every 4th model

The models are described in benchmarks/peer_suites/ (one table per peer, built with Keras 3; nothing
is downloaded). Each is saved, exported, compiled and checked against Keras (benchmarks/peer_suites/
harness.py says how each is classified). Prints the counts per group and overall, the refused layer
classes aggregated (most models first: what to support next) and every wrong number or crash by name;
writes the same as JSON (``--json``). Exit 1 if any model gave wrong numbers or crashed.
Keras runs on TensorFlow, as the peers' generators do, unless KERAS_BACKEND says otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per worker: --jobs says how many

sys.path.insert(0, str(Path(__file__).resolve().parent))  # peer_suites, also in the spawned workers
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # exporter, from this checkout

from peer_suites import Entry  # noqa: E402
from peer_suites.harness import OUTCOMES, PEERS, Outcome, entries_of, run_all, summarize  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--peer", choices=[*PEERS, "all"], default="all")
    p.add_argument("--only", action="append", default=[], help="models whose name contains this (repeatable)")
    p.add_argument("--every", type=int, default=1, help="every Nth model of the selection (a deterministic sample)")
    p.add_argument("--limit", type=int, default=0, help="at most this many models (after --every)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each imports Keras once)")
    p.add_argument("--samples", type=int, default=1000, help="random rows per parity check, edge rows besides")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per model before it counts as a crash")
    p.add_argument("--json", type=Path, default=Path("yardstick.json"), help="where to write the summary")
    p.add_argument("--list", action="store_true", help="list the selected models and stop")
    return p.parse_args(argv)


def select(args: argparse.Namespace) -> list[Entry]:
    peers = list(PEERS) if args.peer == "all" else [args.peer]
    entries = [e for peer in peers for e in entries_of(peer)]
    if args.only:
        entries = [e for e in entries if any(part in e.name for part in args.only)]
    entries = entries[:: max(1, args.every)]
    return entries[: args.limit] if args.limit else entries


def print_summary(summary: dict) -> None:
    header = f"{'group':<22}{'models':>7}" + "".join(f"{k:>15}" for k in OUTCOMES)
    print(header)
    for group, counts in summary["groups"].items():
        print(f"{group:<22}{counts['models']:>7}" + "".join(f"{counts[k]:>15}" for k in OUTCOMES))
    print(f"{'all':<22}{summary['models']:>7}" + "".join(f"{summary['total'][k]:>15}" for k in OUTCOMES))
    if summary["refused_layers"]:
        print("\nrefused layer classes: models refusing it, models it alone stands in the way of (what to do next)")
        for row in summary["refused_layers"]:
            print(f"  {row['models']:>4} {row['alone']:>4}  {row['class']:<24} e.g. {row['example'][:100]}")
    if summary["refused_unnamed"]:
        print("\nrefused without a layer list:")
        for row in summary["refused_unnamed"]:
            print(f"  {row['models']:>4}  {row['reason'][:140]}")
    for failure in summary["failures"]:
        print(f"\n{failure['outcome'].upper()}: {failure['name']}: {failure['detail']}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    entries = select(args)
    if args.list:
        print("\n".join(e.name for e in entries))
        return 0
    started = datetime.datetime.now(datetime.timezone.utc)

    def progress(done: int, outcome: Outcome) -> None:
        print(f"[{done}/{len(entries)}] {outcome.name}: {outcome.outcome} ({outcome.seconds:.1f} s)", file=sys.stderr)

    outcomes = run_all(entries, args.jobs, args.samples, args.timeout, progress)
    summary = summarize(outcomes)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    summary["run"] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip(),
        "minutes": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60, 1),
        "arguments": sys.argv[1:] if argv is None else argv,
        "keras_backend": os.environ["KERAS_BACKEND"],
    }
    summary["outcomes"] = [o.__dict__ for o in outcomes]
    print_summary(summary)
    args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nsummary written to {args.json}")
    return 1 if summary["total"]["wrong numbers"] or summary["total"]["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
