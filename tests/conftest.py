"""Shared fixtures. Keras runs on TensorFlow here, as in Lamarr's training."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The exports' batch check (every variant built with its blocks of rows: five parity builds) runs in the
# tests about it (test_parity, test_fuzz: monkeypatch.setenv(..., "1")), not in every export of the suite.
os.environ.setdefault("LAMARR_EXPORT_BATCH_CHECK", "0")

import pytest


@pytest.fixture(scope="session")
def keras():
    from exporter.frontends.keras.load import import_keras

    return import_keras()


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=40,
        help="random models tests/test_fuzz.py draws (default 40; several hundred on demand)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: the random-architecture test (pytest -m fuzz --fuzz-examples 400)")


def pytest_collection_modifyitems(config, items):
    """The tests marked slow (CMake builds, regenerating generated/, the benchmark smoke run) first: pytest-xdist
    gives each worker a first chunk of consecutive tests and the rest as workers free up, so the long ones start at
    once while the other worker takes the short ones, and none of them is left running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
