"""The frontends' one registry shape: a built-in name is declared once, the user's registrations replace
theirs, and the tables derived from declarations hold exactly what was declared."""

from __future__ import annotations

import pytest

from exporter.frontends.keras.layers import CUSTOM_LAYERS, LAYERS, handles, register_layer
from exporter.frontends.keras.operations import OPERATIONS, TF_FUNCTIONS
from exporter.frontends.registry import DuplicateName, Registry


def test_a_name_declared_twice_is_refused():
    registry: Registry[str, int] = Registry("thing", {"a": 1})
    registry.register("b", "c")(2)
    with pytest.raises(DuplicateName, match="thing 'b' is declared twice"):
        registry.add("b", 3)
    assert registry["b"] == 2
    assert registry.names() == ["a", "b", "c"]


def test_a_replacement_is_said_and_a_missing_name_is_named():
    registry: Registry[str, int] = Registry("thing", {"a": 1})
    registry.add("a", 2, replace=True)
    assert registry.get("a") == 2 and registry.get("z") is None and "z" not in registry
    with pytest.raises(KeyError, match="no thing 'z'"):
        registry["z"]


def test_registrations_inside_restored_are_undone():
    registry: Registry[str, int] = Registry("thing", {"a": 1})
    with registry.restored():
        registry.add("b", 2)
        registry.add("a", 3, replace=True)
    assert registry.items() == [("a", 1)]


def test_a_builtin_keras_layer_declared_twice_is_refused():
    with LAYERS.restored(), pytest.raises(DuplicateName, match="Keras layer 'Dense'"):
        handles("Dense")(lambda layer, b, inputs: inputs[0])


def test_the_user_registers_a_layer_again_to_replace_it():
    """``exporter.register_layer`` replaces the mapping of a class named again, as re-running a cell does."""
    with CUSTOM_LAYERS.restored():
        register_layer("Twice", c_expression="{x}")
        mapping = register_layer("Twice")(lambda layer, b, inputs: inputs[0])
        assert CUSTOM_LAYERS["Twice"] is mapping


def test_tf_functions_are_derived_from_the_operations_declarations():
    """Each TensorFlow function translates into an operation the exporter maps, by that operation's declaration."""
    assert len(TF_FUNCTIONS.names()) > 30
    for function, translated in TF_FUNCTIONS.items():
        assert translated.cls in OPERATIONS, function
        assert function in translated.keras2.functions
