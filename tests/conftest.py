"""Shared fixtures. Keras runs on TensorFlow here, as in Lamarr's training."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest


@pytest.fixture(scope="session")
def keras():
    from exporter.frontends.keras import _import_keras

    return _import_keras()
