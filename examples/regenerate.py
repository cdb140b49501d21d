"""Export the shipped examples into generated/: the exact commands, shared with the test that checks them.

python examples/regenerate.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The reference rows are Keras' outputs: computed on TensorFlow, as Lamarr trains and as tests/test_generated.py checks
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))  # the Flax example's module is imported by name (flax_tracking:Model)

FLAX_TRACKING = [
    "--flax",
    "flax_tracking:Model",
    "--flax-kwargs",
    '{"layer": [128, 128, 128]}',
    "--params",
    "flax_tracking.msgpack",
    "--n-inputs",
    "3",
    "--log-columns",
    "1",
    "--preprocess",
    "flax_tracking_scaler.pkl",
    "--output-activation",
    "sigmoid",
]

# generated/<name>.c <- lamarr-export arguments (paths relative to examples/)
EXPORTS: dict[str, list[str]] = {
    "efficiency": ["efficiency.keras", "--preprocess", "efficiency_tX.pkl"],
    "tracking": [
        "tracking.keras",
        "--log-columns",
        "1",
        "--preprocess",
        "tracking_scaler.pkl",
        "--output-activation",
        "sigmoid",
    ],
    "flax_tracking": FLAX_TRACKING,  # the symbol comes from the params file, flax_tracking.msgpack
    "lamarr_tracking": [
        "lamarr_tracking.toml",
        "--trust",
        "lamarr_utils",
    ],  # a model set: four models from one manifest
    "calo_set": ["calo_set.keras"],  # a set Transformer over 16 particles and their mask: two inputs in one row
    "lamarr_pid": ["lamarr_pid.toml"],  # 20 models and 8 pipelines (chained generators) from one manifest
}


def arguments(name: str, out_dir: Path) -> list[str]:
    """The CLI arguments that write generated/<name>.c (or into ``out_dir``)."""
    args = [str(EXAMPLES / a) if (EXAMPLES / a).is_file() else a for a in EXPORTS[name]]
    return [*args, "-o", str(out_dir / f"{name}.c")]


def main() -> int:
    from exporter.cli import main as cli

    out_dir = EXAMPLES.parent / "generated"
    return max(cli(arguments(name, out_dir)) for name in EXPORTS)


if __name__ == "__main__":
    sys.exit(main())
