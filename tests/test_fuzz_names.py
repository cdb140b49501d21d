"""Hostile names, drawn: every escaping function of ``exporter/common/escaping.py`` keeps to its alphabet.

A property test (Hypothesis, derandomized: the same strings every run, a few seconds): strings of
every class of code point (controls, surrogates, bidi overrides, emoji) mixed with the fragments
that splice C comments and forge lines, through each function; the C comments of each draw are
compiled together in one file under ``-trigraphs -Werror`` and must define nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.common.escaping import c_comment, cmake_list_item, one_line, terminal, terminal_line, visible

from helpers import comment_symbols

FRAGMENTS = ["\\", "\r", "\n", "\r\n", "??/", "??", "*/", "/*", "*", "/", "$<", ";", "[", "]", "\x1b[2K", "#"]
FRAGMENTS += ["\u202e", "\u2066", "\x85", "\x9b", "\udcff", " int injected = 1; ", "lamarr-export: ok"]
# everything Unicode has, surrogates and controls included
CHARACTERS = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
NAMES = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(CHARACTERS, max_size=6)), max_size=12).map("".join)
FUZZ = settings(
    max_examples=500, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)

# what a terminal obeys: C0 but LF, DEL, C1, bidi marks, overrides and isolates, line separators, lone surrogates
TERMINAL_CONTROLS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


@FUZZ
@given(NAMES)
def test_each_function_keeps_to_its_alphabet(name):
    comment = c_comment(name)
    assert all(" " <= ch <= "~" for ch in comment)
    assert not any(bad in comment for bad in ("\\", "*/", "/*", "??"))
    assert all(" " <= ch <= "~" for ch in one_line(name))
    shown = terminal(name)
    assert not TERMINAL_CONTROLS.search(shown) and shown.count("\n") == name.count("\n")
    assert not TERMINAL_CONTROLS.search(terminal_line(name)) and "\n" not in terminal_line(name)
    assert terminal(shown) == shown  # printing escapes once: nothing left to escape
    assert visible(name) == shown and visible(3) == 3
    try:
        item = cmake_list_item(name)
    except ValueError:
        return
    assert item == name and not any(c in item for c in ("\n", "\r", ";", "$<"))
    assert item.count("[") == item.count("]")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_drawn_names_compile_as_inert_comments():
    """A batch of names per draw in one C file (one compile per draw), through the templates' own filter."""

    @settings(FUZZ, max_examples=30)
    @given(st.lists(NAMES, min_size=20, max_size=40))
    def check(names: list[str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            assert sorted(comment_symbols(names, Path(tmp))) == ["f", "x"]

    check()
