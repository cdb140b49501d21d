"""The documentation stays consistent: a short front page, every local link resolves, the site builds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move sections to docs/"


def test_local_links_resolve():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_docs_site_builds_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


ASSET = re.compile(r"<(script|link|img)\b[^>]*?\b(src|href)\s*=\s*[\"']([^\"']*)", re.IGNORECASE)


def test_docs_site_works_offline_from_disk(tmp_path):
    """``mkdocs build`` then ``site/index.html`` opened from disk: no page loads a script, style, font or image
    from another host (links in prose to other sites are fine), and pages link to each other as ``.html``
    files (directory URLs would open folder listings from disk). A build takes well under a second."""
    site = tmp_path / "site"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - start < 10  # about half a second: cheap enough to run with every test run
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > len(list((ROOT / "docs").glob("*.md")))
    remote = [
        f"{page.relative_to(site)}: <{tag} {url}>"
        for page in pages
        for tag, _, url in ASSET.findall(page.read_text())
        if re.match(r"(https?:)?//", url)
    ]
    assert not remote, remote
    index = (site / "index.html").read_text()
    for page in ("command-line", "manifests", "parity"):
        assert f'href="{page}.html"' in index and (site / f"{page}.html").is_file()
    assert not re.search(r'href="[a-z-]+/"', index), "pages must be linked as files, not folders"


def synopsis_flags() -> dict[str, set[str]]:
    """The flags docs/command-line.md's synopsis (its first block) shows, per command (``export``,
    ``inspect``); a command's line continues on the indented lines after it, a ``#`` starts a comment."""
    text = (ROOT / "docs" / "command-line.md").read_text()
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block is not None
    commands: list[str] = []
    for line in block.group(1).splitlines():
        code = line.split("#")[0]
        if line.startswith("lamarr-export"):
            commands.append(code)
        elif code.strip():
            commands[-1] += " " + code
    flags: dict[str, set[str]] = {"export": set(), "inspect": set()}
    for command in commands:
        kind = "inspect" if command.startswith("lamarr-export inspect") else "export"
        flags[kind] |= set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", command.removeprefix("lamarr-export")))
    return flags


def test_synopsis_lists_each_command_s_real_options():
    """Every option of ``lamarr-export`` and of ``lamarr-export inspect`` is in the synopsis, under its
    command, and the synopsis shows no option the command lacks (``--help``, ``--version`` and ``-o``'s long
    form ``--output`` are in the table)."""
    from exporter.cli.parser import inspect_parser, parser

    shown = synopsis_flags()
    for kind, command in (("export", parser()), ("inspect", inspect_parser())):
        options = {o for action in command._actions for o in action.option_strings}
        assert shown[kind] == options - {"-h", "--help", "--version", "--output"}, kind


def test_name_default_is_told_as_the_code_makes_it():
    """``--name``'s default is the stem of ``-o`` when there is one (export), the model file's otherwise
    (tests/test_cli.py's test_symbol_from_the_output_file): the help of each command and the flag table say so."""
    from exporter.cli.parser import inspect_parser, parser

    name = {
        kind: next(a.help for a in p._actions if "--name" in a.option_strings)
        for kind, p in (("export", parser()), ("inspect", inspect_parser()))
    }
    assert "stem of -o OUT.c" in name["export"] and "model file's stem" in name["export"]
    assert "-o" not in name["inspect"] and "model file's stem" in name["inspect"]  # inspect has no -o
    row = next(line for line in (ROOT / "docs/command-line.md").open() if line.startswith("| `--name SYMBOL` |"))
    assert "the stem of `-o OUT.c`" in row and "model file's stem" in row


TRAIN = """
import importlib.abc, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):  # the `keras` extra installs none: Keras goes on without it
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTensorFlow())
import keras, numpy as np
x = np.random.default_rng(0).normal(size=(256, 3))
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, x[:, :1] ** 2, epochs=2, verbose=0)
assert keras.backend.backend() == "jax" and "tensorflow" not in sys.modules
model.save("trained.keras")
"""


def test_readme_s_way_to_train_trains_and_exports(tmp_path):
    """The README tells a user of the ``keras`` extra (no TensorFlow) to train on Keras' jax backend, since
    the numpy backend cannot: that trains (TensorFlow hidden, as that extra lacks it), and the model it saves exports
    with parity."""
    readme = (ROOT / "README.md").read_text()
    assert "`KERAS_BACKEND=jax python train.py`" in readme and "numpy backend cannot train" in readme
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    trained = subprocess.run([sys.executable, "-c", TRAIN], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    export = [sys.executable, "-m", "exporter", "trained.keras", "--samples", "200", "--dispatch", "none", "--quiet"]
    user = {k: v for k, v in env.items() if k != "KERAS_BACKEND"}  # no TensorFlow: the tool picks Keras' backend
    exported = subprocess.run(export, cwd=tmp_path, env=user, capture_output=True, text=True)
    assert exported.returncode == 0 and "parity: passed" in exported.stdout, exported.stdout + exported.stderr


def test_manifest_keys_and_sampled_rows_are_documented():
    """docs/manifests.md's key table lists exactly the keys a manifest entry takes (``trust`` too), and its
    account of the rows checked and written states the code's numbers: rows, seeds, edge rows."""
    from exporter.check import reference_rows
    from exporter.check.inputs import DEFAULT_SAMPLES, edge_rows
    from exporter.sets.manifest import KEYS

    text = (ROOT / "docs" / "manifests.md").read_text()
    table = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    assert {key for cell in table for key in re.findall(r"`(\w+)`", cell)} == set(KEYS)
    assert "[security.md](security.md)" in next(line for line in text.splitlines() if line.startswith("| `trust` |"))
    rows = text[text.index("# The rows checked") : text.index("# CMake and C++")]
    assert f"default {DEFAULT_SAMPLES:,}" in rows and "seed 0" in rows and "seed 1" in rows  # api: inputs, noise
    assert all(len(edge_rows(n)) == 17 + 4 * n for n in (1, 3, 12)) and "17 + 4 \u00d7 inputs rows" in rows
    assert f"{reference_rows.N_ROWS} input rows" in rows and f"seed {reference_rows.SEED}" in rows
