"""The extras of pyproject.toml install what their users import: `examples` every package the example
scripts import (and TensorFlow, the backend they train on), `keras` no TensorFlow."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions

from exporter.sets.manifest import _toml

from helpers import ROOT

PROJECT = _toml().loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def installed_by(extra: str) -> set[str]:
    """Every distribution an extra installs, its self-references (lamarr-export[a,b]) followed."""
    names = {_name(r) for r in PROJECT["dependencies"]}
    for requirement in PROJECT["optional-dependencies"][extra]:
        inner = re.fullmatch(r"lamarr-export\[([\w,-]+)\]", requirement)
        names |= set().union(*map(installed_by, inner.group(1).split(","))) if inner else {_name(requirement)}
    return names


def imported_by(script: str) -> set[str]:
    tree = ast.parse(script)
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    if 'KERAS_BACKEND", "tensorflow"' in script:
        modules.add("tensorflow")  # the backend the script trains on
    local = {p.stem for p in (ROOT / "examples").glob("*.py")}  # the scripts import each other
    return modules - set(sys.stdlib_module_names) - local - {"exporter", "__future__"}


# Distributions that provide the same module: which one is installed depends on the extra (CI's `test` extra
# has TensorFlow from tf-keras as `tensorflow`, the `examples` extra names `tensorflow-cpu`).
SAME_MODULE = {"tensorflow": {"tensorflow", "tensorflow-cpu"}}


def test_examples_extra_installs_what_the_scripts_import():
    distributions = packages_distributions()
    extra = installed_by("examples")
    missing = {}
    for script in sorted((ROOT / "examples").glob("*.py")):
        for module in imported_by(script.read_text()):
            names = {_name(d) for d in distributions.get(module, [module])} | SAME_MODULE.get(module, set())
            if not names & extra:
                missing[f"{script.name}: {module}"] = sorted(names)
    assert not missing, f"not installed by pip install '.[examples]': {missing}"


def test_keras_extra_needs_no_tensorflow():
    keras = installed_by("keras")
    assert "keras" in keras and not {n for n in keras if n.startswith("tensorflow")}
    assert {"tensorflow-cpu", "keras"} <= installed_by("tensorflow")


def test_test_extra_installs_one_tensorflow():
    """tf-keras requires `tensorflow`; tensorflow-cpu beside it (261 MB more to download, 1.3 GB to unpack) would
    write the same folder, overwritten by whichever comes last."""
    test = installed_by("test")
    assert "tf-keras" in test and not {n for n in test if n.startswith("tensorflow")}
