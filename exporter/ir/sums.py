"""The order in which a Dense adds its products: part of the network's meaning in the C, the same in every variant.

Every output of a Dense is bias + x[0] w[0] + x[1] w[1] + ... in input order, whatever the instruction set or
the block of rows (docs/c-contract.md#bit-identity), except in a narrow layer: with few outputs the sums are
few dependent chains (128 inputs into 4 outputs: one chain of 128 additions in one 4-lane vector), and their
latency, not the read of the weights, bounds the layer. There each output keeps ``k`` partial sums: input i
goes into partial ``i % k``, each partial in input order (partial 0 starts from the bias, the others from
zero), and the partials are combined pairwise at the end, partial q += partial q + h for h = k/2, k/4, ..., 1
(for k = 4: (p0 + p2) + (p1 + p3)). Every variant and the batch write that order, so they still give the
same bits as one another; the order is this module's, the templates only spell it.
"""

from __future__ import annotations

from exporter.ir.ops import Dense

LANES = 16  # floats of one AVX-512 vector: k partials of a narrow layer fill about one
NARROW = 8  # at most this many outputs: a layer with more has as many chains as columns already
MIN_RUNS = 4  # at least k * MIN_RUNS inputs, or the chains are too short to matter


def partial_sums(op: Dense) -> int:
    """How many interleaved partial sums each output of the Dense ``op`` keeps (1: the plain in-order sum).

    The largest power of two ``k`` with ``k * width <= LANES``, for a layer of at most ``NARROW`` outputs and at
    least ``MIN_RUNS * k`` inputs. Measured on the efficiency network's output layer (128 -> 4, Zen 5, one call
    per row): k = 4 and k = 8 each took 0.04 us off its 0.09 us; k = 16 less (docs/speed.md)."""
    width, n_in = op.width, op.n_in
    if width > NARROW:
        return 1
    k = 1
    while 2 * k * width <= LANES:
        k *= 2
    return k if k > 1 and n_in >= MIN_RUNS * k else 1
