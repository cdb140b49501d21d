"""Flax multi-head attention (linen and nnx), nnx normalizations and Embed, normalizations of a row reshaped
into a tensor, and ``astype`` to integers: compiled C against Flax on many rows."""

from __future__ import annotations

import numpy as np
import pytest

from exporter import export_flax
from exporter.common.errors import UnsupportedModelError

T, F = 5, 4  # items and features of the sequences
# masks in the row: C against Flax in float32 directly (the float32 rule estimates float32's own error by nudging
# every input, which turns a mask's zeros into attended keys, so any error would pass)
FIXED = {"criterion": "fixed", "atol": 2e-4, "rtol": 1e-4}


def _noisy(params, seed=1):
    """Parameters away from their initial values (zero biases, unit scales), so every one is tested."""
    import jax

    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda p: p + 0.3 * rng.standard_normal(p.shape).astype(p.dtype), params)


def _masked_rows(rows: np.ndarray, first: int, count: int) -> np.ndarray:
    """``rows`` with columns ``first:first + count`` made 0/1 masks: every count of ones, none too."""
    rng = np.random.default_rng(first)
    kept = rng.integers(0, count + 1, len(rows))
    order = rng.permuted(np.tile(np.arange(count), (len(rows), 1)), axis=1)
    rows[:, first : first + count] = (order < kept[:, None]).astype(rows.dtype)
    return rows


def _linen_model():
    import jax.numpy as jnp
    from flax import linen as nn

    class Model(nn.Module):
        """Self attention with a key mask from the row, causal self attention, cross attention of 3 queries
        with a per-query mask, a residual LayerNorm on the (T, F) tensor between them."""

        @nn.compact
        def __call__(self, x):
            seq, memory = x[: T * F].reshape(T, F), x[T * F : T * F + 3 * F].reshape(3, F)
            keep, pairs = x[-4 * T : -3 * T], x[-3 * T :].reshape(3, T)  # 0/1 flags: per item, per query and item
            h = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=6)(seq, mask=keep[None, None, :])
            h = nn.LayerNorm()(seq + h)
            h = nn.MultiHeadAttention(num_heads=3, qkv_features=9, out_features=5)(
                h, mask=nn.make_causal_mask(jnp.ones(T))
            )
            c = nn.MultiHeadDotProductAttention(num_heads=1, use_bias=False)(memory, h, mask=pairs)
            return jnp.concatenate([h.reshape(-1), nn.Dense(2)(c).reshape(-1)])

    return Model()


def test_linen_attention_matches_flax():
    import jax

    model = _linen_model()
    n = T * F + 3 * F + 4 * T
    params = _noisy(jax.jit(model.init)(jax.random.PRNGKey(0), np.zeros(n, np.float32)))  # eager: an XLA compile per op
    ex = export_flax(model, params, n_inputs=n, name="flax_attention")
    kinds = [op.describe().split()[0] for op in ex.chain.net.ops]
    assert kinds.count("Attention") == 3, kinds
    report = ex.check(
        ex.compile(one_row=True),
        inputs=_masked_rows(_masked_rows(ex.inputs(), T * F + 3 * F, T), T * F + 3 * F + T, 3 * T),
        **FIXED,
    )
    assert report.passed, report.table()


def test_nnx_attention_normalizations_and_embed_match_flax():
    import jax.numpy as jnp
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(7, 3, rngs=rngs)
            self.layer = nnx.LayerNorm(F, rngs=rngs)
            self.rms = nnx.RMSNorm(F, rngs=rngs)
            self.group = nnx.GroupNorm(F, num_groups=2, rngs=rngs)
            self.attention = nnx.MultiHeadAttention(2, F, qkv_features=6, decode=False, rngs=rngs)

        def __call__(self, x):
            ids = self.embed(x[T * F :].astype(jnp.int32))  # (T, 3): a category per item
            seq = self.rms(self.layer(x[: T * F].reshape(T, F)))
            h = self.attention(self.group(seq), is_causal=True)
            return jnp.concatenate([h.reshape(-1), ids.reshape(-1)])

    model = Model(nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    model = nnx.merge(graphdef, _noisy(state))
    ex = export_flax(model, n_inputs=T * F + T, name="nnx_attention")
    kinds = {op.describe().split()[0] for op in ex.chain.net.ops}
    assert {"Embedding", "LayerNorm", "Normalize", "Attention"} <= kinds, kinds
    report = ex.check(ex.compile(one_row=True))
    assert report.passed, report.table()


def test_normalizations_of_a_tensor_and_astype_to_integers():
    """On a (T, F) tensor the normalizations run per item (GroupNorm, whose statistics skip Flax's batch axis,
    over each item's groups); a float -> int ``astype`` truncates toward zero, NaN to 0, saturating."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            seq = x.reshape(T, F)
            h = nn.GroupNorm(num_groups=2)(nn.RMSNorm()(nn.LayerNorm()(seq)))
            whole = x[:3].astype(jnp.int8).astype(jnp.float32)  # truncated, saturating at -128, 127
            return jnp.concatenate([nn.Dense(3)(h).reshape(-1), whole])

    model = Model()
    params = _noisy(jax.jit(model.init)(jax.random.PRNGKey(0), np.zeros(T * F, np.float32)))
    ex = export_flax(model, params, n_inputs=T * F, name="flax_tensor_norms")
    rows = ex.inputs()
    edges = [[np.nan, np.inf, -np.inf], [1e9, -1e9, 2.99], [-2.99, 142.5, -142.6], [0.3, -0.3, 0.0]]
    rows[:4, :3] = edges
    report = ex.check(ex.compile(one_row=True), inputs=rows)
    assert report.passed, report.table()
    converted = report.arrays.c_out[:, -3:]  # whole numbers: the float rule's nudges make no allowance here
    np.testing.assert_array_equal(converted, report.arrays.ref[:, -3:])
    assert converted[:3].tolist() == [[0, 127, -128], [127, -128, 2], [-2, 127, -128]]


REFUSED = {  # (nn, jnp, s: the row as a (T, F) tensor) -> a use refused, and what the refusal says
    "attention_fn": lambda nn, jnp, s: nn.MultiHeadDotProductAttention(2, attention_fn=lambda *a, **k: a[2])(s),
    "normalize_qk": lambda nn, jnp, s: nn.MultiHeadDotProductAttention(2, normalize_qk=True)(s),
    "constant mask": lambda nn, jnp, s: nn.MultiHeadDotProductAttention(2)(s, mask=jnp.tril(jnp.ones((2, T, T)), -1)),
    "one for every head": lambda nn, jnp, s: nn.MultiHeadDotProductAttention(2)(
        s, mask=s.reshape(-1)[: 2 * T].reshape(2, 1, T)
    ),
    "batch axes": lambda nn, jnp, s: nn.MultiHeadDotProductAttention(1)(s[None]),
    "only its input": lambda nn, jnp, s: nn.LayerNorm()(s, mask=jnp.ones((T, F), bool)),
    "control flow": lambda nn, jnp, s: (s > 0).astype(jnp.float32),
    "conversion to bool": lambda nn, jnp, s: s.astype(bool).astype(jnp.float32),
}


@pytest.mark.parametrize("fragment", REFUSED)
def test_what_flax_attention_cannot_map_is_refused_by_name(fragment):
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            return REFUSED[fragment](nn, jnp, x.reshape(T, F)).reshape(-1)

    model = Model()
    params = model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, np.zeros(T * F))
    with pytest.raises(UnsupportedModelError, match=fragment):
        export_flax(model, params, n_inputs=T * F)
