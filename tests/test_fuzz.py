"""Random Keras architectures through the command line: exported with parity, or refused naming every problem.

Hypothesis draws each model layer by layer (Sequential or Functional, merges, nested models, shared
layers, every supported and several unsupported layers and activation strings, 1-3 inputs, 1-2
outputs, widths 1-300), saves it and runs ``lamarr-export`` on it in process. Every model must either
exit 0 with parity passed, its C compiled under the strict warning flags (as CFLAGS of the
export's own compiles) and its SYMBOL_batch giving the bits of one call per row in every
instruction-set variant this CPU runs (the export's batch check), or exit 2 naming every refused
layer, activation and input/output count; never a traceback, and nothing written on exit 2.

Seeded and derandomized: the same models every run. ``--fuzz-examples N`` sets how many (default
40); ``pytest -m fuzz --fuzz-examples 400`` runs this test alone on several hundred.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fuzz_tensors import ACTIVATIONS, draw_tensor_model
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from exporter.backend.isa import VARIANTS, missing_on_this_cpu
from exporter.frontends.keras.load import load_keras_file, stored_walk
from exporter.frontends.keras.stored import NotStored
from exporter.frontends.keras.walk import walk_keras

from helpers import STRICT_CFLAGS, custom_layer, randomize, run_cli

pytestmark = [pytest.mark.fuzz, pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")]

# glu needs an even width (Keras refuses the odd ones itself).
SUPPORTED_ACTIVATIONS = ACTIVATIONS
UNSUPPORTED_ACTIVATIONS = ["sparsemax"]
SUPPORTED_LAYERS = [
    "dense",
    "activation",
    "batch_norm",
    "dropout",
    "gaussian_noise",
    "relu",
    "leaky_relu",
    "elu",
    "prelu",
    "softmax",
    "rescaling",
    "identity",
    "flatten",
    "layer_norm",
    "reshape",
    "unit_norm",
]
UNSUPPORTED_LAYERS = ["lambda", "custom"]
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]
RUNNABLE = [v.name for v in VARIANTS["auto"] if not missing_on_this_cpu(v)]  # the variants the batch check runs


@dataclass
class Drawn:
    """A model being drawn: its Keras tensors, which of them nothing reads yet, and what must be refused."""

    keras: Any
    data: Any
    tensors: list[Any] = field(default_factory=list)
    unread: list[Any] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # fragments the error message must hold
    count: int = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"l{self.count}_{kind}"

    def draw(self, strategy: Any, label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def width(self) -> int:
        return self.draw(st.integers(1, 300) | st.integers(1, 8), "width")

    def activation(self, where: str) -> str | None:
        """An activation string: usually a supported one, sometimes none, sometimes one that is refused."""
        group = self.draw(st.sampled_from(["supported"] * 8 + ["none", "refused"]), f"{where} activation kind")
        choices = {"supported": SUPPORTED_ACTIVATIONS, "none": [None], "refused": UNSUPPORTED_ACTIVATIONS}[group]
        act = self.draw(st.sampled_from(choices), f"{where} activation")
        if act in UNSUPPORTED_ACTIVATIONS:
            self.refused.append(f"activation '{act}' is not supported")
        return act

    def unary(self) -> list[Any]:
        """One layer (two for a reshape, which a Flatten brings back to a row), refusals recorded."""
        L = self.keras.layers
        refused = self.draw(st.sampled_from([False] * 7 + [True]), "refused layer")  # Hypothesis favours the first
        kind = self.draw(st.sampled_from(UNSUPPORTED_LAYERS if refused else SUPPORTED_LAYERS), "layer")
        name = self.name(kind)
        if kind in UNSUPPORTED_LAYERS:
            self.refused.append(f"'{name}'")
        if kind == "dense":
            return [L.Dense(self.width(), activation=self.activation(name), name=name)]
        if kind == "activation":
            act = self.activation(name) or "linear"
            return [L.Activation(act, name=name)]
        if kind == "relu":
            config = self.draw(
                st.fixed_dictionaries(
                    {
                        "max_value": st.sampled_from([None, 6.0, 2.5]),
                        "negative_slope": st.sampled_from([0.0, 0.1]),
                        "threshold": st.sampled_from([0.0, 0.5]),
                    }
                ),
                "ReLU",
            )
            return [L.ReLU(**config, name=name)]
        if kind == "rescaling":
            return [L.Rescaling(0.5, offset=-1.0, name=name)]
        if kind == "reshape":
            return [L.Reshape((-1, 1), name=name), L.Flatten(name=self.name("flatten"))]
        if kind == "lambda":
            return [L.Lambda(lambda t: t * 2.0, name=name)]
        if kind == "custom":
            return [custom_layer(self.keras)(name=name)]
        plain = {
            "batch_norm": L.BatchNormalization,
            "dropout": lambda name: L.Dropout(0.3, name=name),
            "gaussian_noise": lambda name: L.GaussianNoise(0.1, name=name),
            "leaky_relu": lambda name: L.LeakyReLU(0.3, name=name),
            "elu": lambda name: L.ELU(0.7, name=name),
            "prelu": L.PReLU,
            "softmax": L.Softmax,
            "identity": L.Identity,
            "flatten": L.Flatten,
            "layer_norm": L.LayerNormalization,
            "unit_norm": L.UnitNormalization,
        }
        return [plain[kind](name=name)]

    def take(self) -> Any:
        """A tensor to build on: preferably one nothing reads yet."""
        pool = self.unread or self.tensors
        tensor = pool[self.draw(st.integers(0, len(pool) - 1), "operand")]
        if tensor in self.unread:
            self.unread.remove(tensor)
        return tensor

    def add(self, tensor: Any) -> None:
        self.tensors.append(tensor)
        self.unread.append(tensor)

    def same_width(self, tensor: Any) -> Any:
        """Another tensor as wide as ``tensor``: an existing one, or a Dense projection of one."""
        width = tensor.shape[-1]
        others = [t for t in self.tensors if t.shape[-1] == width and t is not tensor]
        if others and self.draw(st.booleans(), "reuse a tensor of that width"):
            other = others[self.draw(st.integers(0, len(others) - 1), "which")]
            if other in self.unread:
                self.unread.remove(other)
            return other
        return self.keras.layers.Dense(width, name=self.name("project"))(self.take())

    def step(self) -> None:
        """One functional step: a layer, a merge, a nested model or a layer shared by two tensors."""
        kind = self.draw(st.sampled_from(["layer", "layer", "merge", "nested", "shared"]), "step")
        if kind == "layer":
            x = self.take()
            for layer in self.unary():
                x = layer(x)
            self.add(x)
        elif kind == "merge":
            merge = self.draw(st.sampled_from(MERGES), "merge")
            first = self.take()
            n = 2 if merge == "Subtract" else self.draw(st.integers(2, 3), "merged tensors")
            operands = [first] + [self.same_width(first) for _ in range(n - 1)]
            self.add(getattr(self.keras.layers, merge)(name=self.name(merge.lower()))(operands))
        elif kind == "nested":
            x = self.take()
            self.add(self.nested(x.shape[-1])(x))
        else:
            first = self.take()
            second = self.same_width(first)
            shared = self.keras.layers.Dense(self.width(), activation="tanh", name=self.name("shared"))
            self.add(shared(first))
            self.add(shared(second))

    def nested(self, width: int) -> Any:
        """A small Sequential used as a layer, or a Functional residual block."""
        keras = self.keras
        if self.draw(st.booleans(), "nested sequential"):
            layers = [layer for _ in range(self.draw(st.integers(1, 3), "nested depth")) for layer in self.unary()]
            return keras.Sequential([keras.Input((width,)), *layers], name=self.name("inner_seq"))
        x = keras.Input((width,))
        h = keras.layers.Dense(width, activation=self.activation("inner"), name=self.name("inner_dense"))(x)
        return keras.Model(x, keras.layers.Add(name=self.name("inner_add"))([x, h]), name=self.name("inner_block"))

    def outputs(self, n: int) -> list[Any]:
        """``n`` outputs that read every tensor nothing reads yet, so every drawn layer is in the model."""
        groups = [self.unread[k::n] for k in range(n)]
        outs = []
        for k, group in enumerate(groups):
            group = group or [self.tensors[-1]]
            outs.append(group[0] if len(group) == 1 else self.keras.layers.Concatenate(name=f"out{k}")(group))
        return outs


def draw_model(keras: Any, data: Any) -> tuple[Any, list[str]]:
    """A random model and the fragments the refusal must name (none: it must export)."""
    d = Drawn(keras, data)
    if d.draw(st.booleans(), "sequential"):
        x = first = keras.Input((d.width(),))
        layers = []
        for _ in range(d.draw(st.integers(1, 5), "depth")):
            nested = d.draw(st.integers(0, 4), "nested") == 0
            for layer in [d.nested(x.shape[-1])] if nested else d.unary():
                layers.append(layer)
                x = layer(x)  # builds the layer, and tells the next one its width
        return keras.Sequential([keras.Input(first.shape[1:]), *layers], name="fuzz_sequential"), d.refused
    n_in = d.draw(st.sampled_from([1, 1, 2, 2, 3]), "inputs")
    inputs = [keras.Input((d.width(),), name=f"in{k}") for k in range(n_in)]
    for x in inputs:
        d.add(x)
    for _ in range(d.draw(st.integers(1, 6), "steps")):
        d.step()
    n_out = d.draw(st.sampled_from([1, 1, 1, 2]), "outputs")
    if n_out == 2:
        d.refused.append("2 outputs; exactly one is supported")
    return keras.Model(inputs, d.outputs(n_out), name="fuzz_functional"), d.refused


def _stored_walk_agrees(path: Path) -> None:
    """Where the export walked the file from what it stores, that is the IR of the model Keras loads."""
    try:
        stored = stored_walk(path, path.name).graph()
    except NotStored:
        event("walked after Keras loaded it")
        return
    event("walked from the stored file")
    assert stored.same_as(walk_keras(load_keras_file(path), path.name).graph())


def fuzz_examples(config: Any) -> int:
    return int(config.getoption("--fuzz-examples"))


@pytest.fixture
def strict_cflags(monkeypatch):
    """The export's own compiles use the strict warning flags: one compile per model proves both. Its batch
    check (off elsewhere in the suite) compares SYMBOL_batch with one call per row in every variant this
    CPU runs, bit for bit: random widths leave every tail of every block."""
    monkeypatch.setenv("CC", "gcc")
    monkeypatch.setenv("CFLAGS", shlex.join(STRICT_CFLAGS))
    monkeypatch.setenv("LAMARR_EXPORT_BATCH_CHECK", "1")


def _exports_or_is_refused(capsys: Any, model: Any, refused: list[str]) -> None:
    """The contract of every drawn model: exit 0 with parity and batch bits, or exit 2 naming every problem."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        randomize(model, seed=len(model.layers)).save(folder / "fuzz.keras")
        args = (folder / "fuzz.keras", "-o", folder / "fuzz.c", "--samples", 100)
        code, out, err = run_cli(capsys, *args)
        assert "Traceback" not in out + err
        event("refused" if refused else "exported")
        if refused:
            assert code == 2, (refused, out, err)
            missing = [fragment for fragment in refused if fragment not in err]
            assert not missing, (missing, err)
            assert os.listdir(folder) == ["fuzz.keras"], "a refusal must leave no file behind"
        else:
            assert code == 0, (out, err)
            assert "parity: passed" in out
            assert f"batch: the same bits as one call per row in {', '.join(RUNNABLE)} (" in out, out
            assert {"fuzz.c", "fuzz.h"} <= set(os.listdir(folder))
            _stored_walk_agrees(folder / "fuzz.keras")


FUZZ_SETTINGS = {"derandomize": True, "database": None, "deadline": None, "suppress_health_check": list(HealthCheck)}


def test_random_architectures_export_or_are_refused_completely(keras, capsys, strict_cflags, request):
    @settings(max_examples=fuzz_examples(request.config), **FUZZ_SETTINGS)
    @given(data=st.data())
    def check(data: Any) -> None:
        _exports_or_is_refused(capsys, *draw_model(keras, data))

    check()


def test_random_tensor_models_export_or_are_refused_completely(keras, capsys, strict_cflags, request):
    """The same contract for models over tensors (a sequence (T, F), an image (H, W, C)): see ``draw_tensor_model``."""

    @settings(max_examples=max(1, fuzz_examples(request.config) // 2), **FUZZ_SETTINGS)
    @given(data=st.data())
    def check(data: Any) -> None:
        _exports_or_is_refused(capsys, *draw_tensor_model(keras, data))

    check()
