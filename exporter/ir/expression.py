"""Elementwise formulas of one value ``x``: arithmetic and ``<math.h>`` functions, nothing else.

A user's function (a ProbNN ``logit``) reaches the C as an :class:`Expr` tree: parsed from a C
expression (scikinC's ``inC`` strings: ``"log({x} / (1 - {x}))"``) by a small grammar, or traced
from the Python function (``exporter/frontends/sklearn/symbolic.py``). Either way the C is
printed back from the tree, so only what the grammar admits can reach the file::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("+" | "-") unary | primary
    primary := NUMBER | "x" | "{x}" | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

FUNCTION is one of ``FUNCTIONS`` (double-precision ``<math.h>``). There are no statements,
no ``;``, no comments, no other names. Every number is printed as a double literal (so ``1/2``
is 0.5, as in Python, not C's integer 0); every operation is parenthesised as parsed.

A tree is bounded (``MAX_DEPTH`` levels, ``MAX_TERMS`` terms, checked as each node is made, parsed
or traced) and a text (``MAX_LENGTH`` characters): printing, evaluating and comparing a tree recurse
once per level, and a hostile string or function (2,000 unary minuses, a sum of 1,000 terms, a
square taken 40 times over: 2**40 terms once printed) would otherwise exhaust Python's stack or
the memory instead of being refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

# <math.h> double functions an expression may call -> their number of arguments
FUNCTIONS = MappingProxyType(
    {
        **dict.fromkeys(
            "sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh exp exp2 expm1 log log2 log10 log1p "
            "sqrt cbrt fabs floor ceil trunc round erf erfc".split(),
            1,
        ),
        **dict.fromkeys("pow atan2 fmin fmax fmod hypot copysign".split(), 2),
    }
)
MAX_LENGTH = 2000  # characters of one C expression
# Levels of the tree: a sum or product adds one per term (the C is parenthesised as parsed, and
# clang refuses more than 256 nested parentheses); also the parser's nesting of parentheses.
MAX_DEPTH = 100
MAX_TERMS = 1000  # numbers, x's, operations and calls of one tree, as printed (a shared subtree each time)
_NUMPY: dict[str, Callable[..., np.ndarray]] = {
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "fabs": np.abs,
    "round": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),  # C rounds halves away from zero
    "pow": np.power,
    "atan2": np.arctan2,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<x>\{x\})|(?P<op>[-+*/(),]))"
)


class ExpressionError(ValueError):
    """A C expression outside the grammar; the message says what and where."""


@dataclass(frozen=True)
class Expr:
    """One node: ``num`` (``value``), ``x``, ``neg`` (``args[0]``), ``+ - * /`` (two args) or a function call."""

    kind: str
    args: tuple[Expr, ...] = ()
    value: float = 0.0
    depth: int = field(default=1, init=False, compare=False, repr=False)  # levels, this node included
    terms: int = field(default=1, init=False, compare=False, repr=False)  # nodes as printed, this one included

    def __post_init__(self) -> None:
        """Measured from the arguments' measures (no recursion), and refused past the bounds."""
        if not self.args:
            return
        depth = 1 + max(a.depth for a in self.args)
        terms = 1 + sum(a.terms for a in self.args)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels (the limit; each term of a sum is a level)")
        if terms > MAX_TERMS:
            raise ExpressionError(f"more than {MAX_TERMS} terms (the limit: numbers, x, operations and calls)")
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "terms", terms)

    def c(self) -> str:
        """The C99 expression of the double ``x``, fully parenthesised."""
        if self.kind == "num":
            return _literal(self.value)
        if self.kind == "x":
            return "x"
        if self.kind == "neg":
            return f"(-{self.args[0].c()})"
        if self.kind in "+-*/":
            return f"({self.args[0].c()} {self.kind} {self.args[1].c()})"
        return f"{self.kind}({', '.join(a.c() for a in self.args)})"

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The formula on numpy values (for sampling where it is defined; the C is checked against the
        user's own Python function, not against this)."""
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            if self.kind == "num":
                return np.full_like(x, self.value)
            if self.kind == "x":
                return x
            values = [a.evaluate(x) for a in self.args]
            if self.kind == "neg":
                return -values[0]
            if self.kind in "+-*/":
                a, b = values
                return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[self.kind](a, b)
            if self.kind in ("erf", "erfc"):
                import scipy.special

                return getattr(scipy.special, self.kind)(*values)
            return (_NUMPY.get(self.kind) or getattr(np, self.kind))(*values)


X = Expr("x")


def num(value: float) -> Expr:
    if not np.isfinite(value):
        raise ExpressionError(f"the constant {value} is not finite (C has no literal for it)")
    return Expr("num", value=float(value))


def call(name: str, *args: Expr) -> Expr:
    if FUNCTIONS.get(name) != len(args):
        raise ExpressionError(f"{name} is not a <math.h> function of {len(args)} argument(s)")
    return Expr(name, tuple(args))


def _literal(value: float) -> str:
    text = repr(float(value))  # the shortest string that reads back as the same double
    return text if any(c in text for c in ".e") else text + ".0"


def parse(text: str) -> Expr:
    """The tree of one C expression in ``x`` (or scikinC's ``{x}``); ``ExpressionError`` if outside the grammar."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{len(text)} characters, longer than {MAX_LENGTH} (the limit)")
    for bad, what in ((";", "a ';' (one expression, no statements)"), ("/*", "a comment"), ("//", "a comment")):
        if bad in text:
            raise ExpressionError(f"{what} is not allowed")
    return _Parser(_tokens(text), text).parse()


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            if text[at:].strip() == "":
                break
            rest = text[at:].lstrip()
            raise ExpressionError(f"unexpected {rest[0]!r} at character {len(text) - len(rest) + 1}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        at = match.end()
    return tokens


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, tokens: list[tuple[str, str, int]], text: str):
        self.tokens, self.text, self.at, self.depth = tokens, text, 0, 0

    def parse(self) -> Expr:
        if not self.tokens:
            raise ExpressionError("empty")
        tree = self.expr()
        if self.at < len(self.tokens):
            raise self.error("expected the end of the expression")
        return tree

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, *texts: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in texts:
            self.at += 1
            return token[1]
        return None

    def error(self, message: str) -> ExpressionError:
        token = self.peek()
        where = f"{token[1]!r} at character {token[2] + 1}" if token else "the end"
        return ExpressionError(f"{message}, found {where}")

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels")
        tree = self.term()
        while op := self.take("+", "-"):
            tree = Expr(op, (tree, self.term()))
        self.depth -= 1
        return tree

    def term(self) -> Expr:
        tree = self.unary()
        while op := self.take("*", "/"):
            tree = Expr(op, (tree, self.unary()))
        return tree

    def unary(self) -> Expr:
        """Signs counted in a loop, not by recursion: a run of them is as long as the text allows."""
        negations = 0
        while sign := self.take("-", "+"):
            negations += sign == "-"
        tree = self.primary()
        for _ in range(negations):
            tree = Expr("neg", (tree,))  # refused past MAX_DEPTH as it is made
        return tree

    def primary(self) -> Expr:
        token = self.peek()
        if token is None:
            raise self.error("expected a number, x, a function or '('")
        kind, text, _ = token
        if kind == "number":
            self.at += 1
            return num(float(text))
        if kind == "x" or (kind == "name" and text == "x"):
            self.at += 1
            return X
        if kind == "name":
            if text not in FUNCTIONS:
                raise self.error(f"{text!r} is neither x nor a <math.h> function ({', '.join(FUNCTIONS)})")
            self.at += 1
            if not self.take("("):
                raise self.error(f"expected '(' after {text}")
            args = [self.expr()]
            while self.take(","):
                args.append(self.expr())
            if not self.take(")"):
                raise self.error(f"expected ')' closing {text}(")
            return call(text, *args)
        if self.take("("):
            tree = self.expr()
            if not self.take(")"):
                raise self.error("expected ')'")
            return tree
        raise self.error("expected a number, x, a function or '('")
