"""The intermediate representation: what a network computes, with no framework attached."""

from exporter.ir.activations import LINEAR, Activation
from exporter.ir.attention import Attention
from exporter.ir.convolution import Conv, Pad, Pool, Upsample
from exporter.ir.graph import Graph
from exporter.ir.layout import Concatenate, Expand, Reshape, Slice, Transpose
from exporter.ir.ops import Activate, Affine, Broadcast, Dense, Formula, LayerNorm, Merge, Op, PReLU, Reduce
from exporter.ir.passes import optimize
from exporter.ir.products import Masked, MatMul, Select
from exporter.ir.recurrent import Recurrent
from exporter.ir.transposed import ConvTranspose

__all__ = [
    "LINEAR",
    "Activate",
    "Activation",
    "Affine",
    "Attention",
    "Broadcast",
    "Concatenate",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Expand",
    "Formula",
    "Graph",
    "LayerNorm",
    "Masked",
    "MatMul",
    "Merge",
    "Op",
    "PReLU",
    "Pad",
    "Pool",
    "Recurrent",
    "Reduce",
    "Reshape",
    "Select",
    "Slice",
    "Transpose",
    "Upsample",
    "optimize",
]
