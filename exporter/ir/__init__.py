"""The intermediate representation: what a network computes, with no framework attached."""

from exporter.ir.activations import LINEAR, Activation
from exporter.ir.graph import Graph
from exporter.ir.ops import ALL_OPS, Activate, Affine, Broadcast, Concatenate, Dense, Merge, Op, PReLU, Reduce
from exporter.ir.passes import optimize

__all__ = [
    "ALL_OPS",
    "LINEAR",
    "Activate",
    "Activation",
    "Affine",
    "Broadcast",
    "Concatenate",
    "Dense",
    "Graph",
    "Merge",
    "Op",
    "PReLU",
    "Reduce",
    "optimize",
]
