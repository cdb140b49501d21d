"""The JAX seed, reproduced: LHCb tracking efficiency from 3-D histograms, trained with Flax, exported to C.

``shared/seeds/000_...`` fits a flax.linen MLP to the efficiency in (eta, pT, phi) bins. Here:

1. synthetic LHCb-like histograms with boost-histogram: eta in [2, 5], pT log-spaced from 10 MeV
   to 10 GeV, phi in [-pi, pi]; generated counts from a falling pT spectrum, reconstructed counts
   drawn binomially from a smooth efficiency (rising with pT, dropping at the eta edges, modulated
   in phi);
2. the seed's checkerboard split of the bins, log(pT), a StandardScaler;
3. the seed's ``Model((128, 128, 128))`` trained with optax nadamw, the plateau learning-rate
   schedule of exercise 2 and the binomial negative log-likelihood of exercise 4;
4. ``efficiency(eta, pT, phi) = sigmoid(net(scaler(eta, log pT, phi)))`` exported as one C function
   with its parity report, and a plot like the seed's ``draw``: efficiency against pT per eta bin,
   data with binomial error bars, the Flax curve and the C curve on top of each other.

    pip install '.[flax,sklearn,examples]' && python examples/flax_tracking.py
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from flax import linen as nn

HERE = Path(__file__).resolve().parent
PLOT = HERE.parent / "docs" / "img" / "flax_tracking.png"  # shown in docs/flax.md


class Model(nn.Module):
    """The seed's network: Dense + ReLU per hidden layer, then Dense(1), flattened: a logit."""

    layer: Sequence[int]

    @nn.compact
    def __call__(self, x):
        for k in self.layer:
            x = nn.Dense(k)(x)
            x = nn.relu(x)
        return nn.Dense(1)(x).flatten()


def true_efficiency(eta: np.ndarray, pt: np.ndarray, phi: np.ndarray) -> np.ndarray:
    turn_on = 1.0 / (1.0 + np.exp(-(np.log(pt) - np.log(250.0)) / 0.45))
    acceptance = np.exp(-(((eta - 3.5) / 1.7) ** 6))
    return 0.96 * turn_on * acceptance * (1.0 - 0.05 * np.cos(3 * phi))


def histograms(seed: int = 0, n_particles: int = 400_000):
    """Generated and reconstructed counts in (eta, pT, phi) bins, boost-histogram style."""
    import boost_histogram as bh

    rng = np.random.default_rng(seed)
    axes = (
        bh.axis.Regular(6, 2.0, 5.0),
        bh.axis.Regular(12, 10.0, 10_000.0, transform=bh.axis.transform.log),
        bh.axis.Regular(4, -np.pi, np.pi),
    )
    eta = rng.uniform(2.0, 5.0, n_particles)
    pt = 10.0 * (1.0 - rng.random(n_particles) * (1.0 - (10.0 / 10_000.0) ** 0.8)) ** (-1.0 / 0.8)  # falling
    phi = rng.uniform(-np.pi, np.pi, n_particles)
    generated = bh.Histogram(*axes, storage=bh.storage.Int64())
    generated.fill(eta, pt, phi)
    centers = np.meshgrid(*(ax.centers for ax in axes), indexing="ij")
    reconstructed = bh.Histogram(*axes, storage=bh.storage.Int64())
    reconstructed.view()[...] = rng.binomial(generated.values().astype(np.int64), true_efficiency(*centers))
    return generated, reconstructed


def split(generated, reconstructed):
    """The seed's checkerboard: bins with even (ieta + ipt + iphi) train, odd ones test."""
    axes = generated.axes
    n_gen, n_rec = generated.values(), reconstructed.values()
    parts: dict[bool, list[list[float]]] = {True: [], False: []}
    for ieta, eta in enumerate(axes[0].centers):
        for iphi, phi in enumerate(axes[2].centers):
            for ipt, pt in enumerate(axes[1].centers):
                parts[(ipt + ieta + iphi) % 2 == 0].append(
                    [eta, pt, phi, n_rec[ieta, ipt, iphi], n_gen[ieta, ipt, iphi]]
                )
    return (np.array(parts[True]), np.array(parts[False]))


def train(model, t_train, k_train, n_train, t_test, k_test, n_test, max_epoch: int, seed: int = 0):
    """The seed's loop with exercise 2's plateau schedule and exercise 4's binomial likelihood."""
    import jax
    import jax.numpy as jnp
    import optax

    init_key, batch_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, t_train[:1])
    opt = optax.inject_hyperparams(optax.nadamw)(learning_rate=1e-3)
    opt_state = opt.init(params)

    @jax.jit
    def loss_fn(params, t, k, n):
        y = model.apply(params, t)
        return -jnp.sum(k * nn.log_sigmoid(y) + (n - k) * nn.log_sigmoid(-y))

    @jax.jit
    def step(params, opt_state, t, k, n):
        grads = jax.grad(loss_fn)(params, t, k, n)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    batch = 10
    best, best_params, losses = np.inf, params, []
    for epoch in range(max_epoch):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(batch_key, epoch), len(t_train)))
        for i in range(0, len(perm) - batch + 1, batch):
            idx = perm[i : i + batch]
            params, opt_state = step(params, opt_state, t_train[idx], k_train[idx], n_train[idx])
        losses.append(float(loss_fn(params, t_test, k_test, n_test)))
        if losses[-1] < best:
            best, best_params = losses[-1], params
        if epoch % 10 == 9 and epoch >= 19 and min(losses[-10:]) >= min(losses[-20:-10]):
            opt_state.hyperparams["learning_rate"] *= 0.9  # a plateau: slow down
        if opt_state.hyperparams["learning_rate"] < 1e-10:
            break
    return best_params, losses


def draw(path: Path, generated, reconstructed, flax_fn, c_fn) -> None:
    """Efficiency against pT per eta bin: data with binomial errors, the Flax curve, the C curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = generated.axes
    n_gen, n_rec = generated.values().sum(axis=2), reconstructed.values().sum(axis=2)
    pt = np.geomspace(10.0, 10_000.0, 200)
    fig, panels = plt.subplots(2, 3, figsize=(12, 7), sharex=True, sharey=True)
    for ieta, (eta, ax) in enumerate(zip(axes[0].centers, panels.flat, strict=True)):
        n, k = n_gen[ieta], n_rec[ieta]
        p = np.divide(k, n, out=np.zeros_like(k, dtype=float), where=n > 0)
        err = np.sqrt(p * (1 - p) / np.maximum(n, 1))
        ax.errorbar(axes[1].centers, p, err, fmt="ok", ms=3, label="data")
        rows = [
            np.stack([np.full_like(pt, eta), pt, np.full_like(pt, phi)], axis=1).astype(np.float32)
            for phi in axes[2].centers
        ]  # the curves are averaged over phi, like the data
        ax.plot(pt, np.mean([flax_fn(r) for r in rows], axis=0), "-", color="tab:blue", lw=3, alpha=0.6, label="Flax")
        ax.plot(pt, np.mean([c_fn(r) for r in rows], axis=0), "--", color="tab:red", lw=1.5, label="C")
        ax.set_title(f"eta = {eta:.2f}")
        ax.semilogx()
    panels[0, 0].legend()
    for ax in panels[1]:
        ax.set_xlabel("pT [MeV]")
    for ax in panels[:, 0]:
        ax.set_ylabel("efficiency")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs", type=int, default=500, help="at most this many epochs (the schedule may stop earlier)"
    )
    args = parser.parse_args()

    import jax
    from flax import serialization
    from sklearn.preprocessing import StandardScaler

    from exporter import export_flax

    start = time.perf_counter()
    generated, reconstructed = histograms()
    train_bins, test_bins = split(generated, reconstructed)
    for bins in (train_bins, test_bins):
        bins[:, 1] = np.log(bins[:, 1])  # the seed's log(pT)
    scaler = StandardScaler().fit(train_bins[:, :3])
    model = Model((128, 128, 128))
    params, losses = train(
        model,
        scaler.transform(train_bins[:, :3]),
        train_bins[:, 3],
        train_bins[:, 4],
        scaler.transform(test_bins[:, :3]),
        test_bins[:, 3],
        test_bins[:, 4],
        args.epochs,
    )
    print(f"trained {len(losses)} epochs in {time.perf_counter() - start:.1f} s, best test NLL {min(losses):.1f}")
    (HERE / "flax_tracking.msgpack").write_bytes(serialization.to_bytes(params))
    with open(HERE / "flax_tracking_scaler.pkl", "wb") as f:
        pickle.dump(scaler, f)

    ex = export_flax(
        model,
        params,
        n_inputs=3,
        log_columns=[1],
        preprocess=[scaler],
        output_activation="sigmoid",
        name="flax_tracking",
    )
    compiled = ex.compile()
    report = ex.check(compiled)
    print(f"parity: {report.verdict()}\n{report.table()}")
    apply = jax.jit(jax.vmap(lambda x: jax.nn.sigmoid(model.apply(params, x))))

    def flax_fn(rows: np.ndarray) -> np.ndarray:
        prepared = rows.astype(np.float64).copy()
        prepared[:, 1] = np.log(prepared[:, 1])
        return np.asarray(apply(scaler.transform(prepared).astype(np.float32))).reshape(-1)

    draw(PLOT, generated, reconstructed, flax_fn, lambda rows: compiled(rows)[:, 0])
    print(f"wrote {PLOT}; export with python examples/regenerate.py")


if __name__ == "__main__":
    main()
