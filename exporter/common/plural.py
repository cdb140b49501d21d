"""Counts in messages: ``1 output``, ``4 outputs``, never ``1 outputs`` or ``layer(s)``."""

from __future__ import annotations

IRREGULAR = {"noise": "noise"}


def noun(n: int, word: str) -> str:
    """``word`` as it follows the number ``n``: plural unless ``n`` is 1."""
    return word if n == 1 else IRREGULAR.get(word, word + "s")


def count(n: int, word: str) -> str:
    """``n`` (thousands separated) and ``word``, plural unless ``n`` is 1."""
    return f"{n:,} {noun(n, word)}"
