"""Column names: what each input and output of an exported function is called, for a loader to check.

Lamarr configures a plugin by hand: an SQL query whose selected columns must be the model's inputs in
the model's order, and a list of output column names. A column fed in the wrong slot gives wrong
physics silently, so the library states its columns (``SYMBOL_info``) and a loader compares them.
The names come from, first to last: the user (a manifest's ``inputs``/``outputs``, the command's
``--input-names``/``--output-names``), a fitted scikit-learn transformer's ``feature_names_in_``
(the preprocessing's for the inputs, the target transform's for the outputs), else ``x0..``/``y0..``.
Each must be an SQL and C identifier (a column of SQLamarr's tables, a C macro's suffix), since
whoever reads them puts them in a query or in code unquoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.backend.naming import C_KEYWORDS, CPP_KEYWORDS, IDENTIFIER
from exporter.common.errors import InputError

MAX_NAME = 63  # C99 guarantees 63 significant characters of an internal identifier; SQL engines accept them
# the keywords SQLite (SQLamarr's engine) and standard SQL reserve: as a bare column name they break the query
SQL_KEYWORDS = set(
    """abort action add after all alter analyze and as asc attach autoincrement before begin between by cascade
    case cast check collate column commit conflict constraint create cross current current_date current_time
    current_timestamp database default deferrable deferred delete desc detach distinct do drop each else end
    escape except exclusive exists explain fail filter for foreign from full glob group having if ignore
    immediate in index indexed initially inner insert instead intersect into is isnull join key left like
    limit match natural no not notnull null of offset on or order outer over partition plan pragma primary
    query raise range recursive references regexp reindex release rename replace restrict returning right
    rollback row rows savepoint select set table temp temporary then to transaction trigger union unique
    update using vacuum values view virtual when where window with without""".split()
)
KEYS = {"inputs": "input", "outputs": "output"}  # the key of a list of names -> what it names


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a column name, or None."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        return "not an identifier (letters, digits and _, not starting with a digit)"
    if len(name) > MAX_NAME:
        return f"{len(name)} characters, at most {MAX_NAME}"
    if name in C_KEYWORDS or name in CPP_KEYWORDS:
        return "a C or C++ keyword"
    if name.lower() in SQL_KEYWORDS:
        return "an SQL keyword (it would break the query selecting it)"
    return None


def check_names(names: Sequence[str], width: int, key: str) -> tuple[str, ...]:
    """``names`` checked as the ``width`` columns ``key`` (``inputs`` or ``outputs``) names; an error names the name."""
    what = KEYS[key]
    for name in names:
        problem = name_problem(name)
        if problem:
            raise InputError(key, f"{name!r}: {problem}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(key, f"{name!r}: named twice (each {what} column needs its own name)")
        seen.add(name)
    if len(names) != width:
        listed = ", ".join(names)
        raise InputError(key, f"{len(names)} names ({listed}), but the model has {width} {what}s")
    return tuple(names)


def default_names(prefix: str, width: int) -> tuple[str, ...]:
    """``x0, x1...`` or ``y0, y1...``: what a column no one named is called."""
    return tuple(f"{prefix}{k}" for k in range(width))


def fitted_names(estimator: Any, width: int) -> tuple[str, ...] | None:
    """A fitted transformer's ``feature_names_in_`` (set when it was fitted on a DataFrame), if they fit as names."""
    found = getattr(estimator, "feature_names_in_", None)
    if found is None:
        return None
    names = [str(n) for n in found]
    if len(names) != width or any(name_problem(n) for n in names) or len(set(names)) != len(names):
        return None  # a DataFrame's columns need not be identifiers: the defaults then, never an error
    return tuple(names)


def split_names(text: str) -> list[str]:
    """``--input-names a,b,c``: the names, spaces around them dropped."""
    return [part.strip() for part in text.split(",")]


def name_fitted(chain: Any, pre: Sequence[Any], target: Any) -> None:
    """A chain's columns as its transformers were fitted: the first preprocessing step's inputs, the target
    transform's (fitted on the outputs), when they were fitted on a DataFrame with identifier columns."""
    chain.input_names = fitted_names(pre[0], chain.n_inputs) if pre else None
    chain.output_names = fitted_names(target, chain.n_outputs) if target is not None else None


def name_columns(ex: Any, inputs: Sequence[str] | None, outputs: Sequence[str] | None) -> None:
    """Name an export's columns as the user did (None: keep the fitted names), each list checked against its width."""
    chain = ex.chain
    if inputs is not None:
        chain.input_names = check_names(inputs, chain.n_inputs, "inputs")
    if outputs is not None:
        chain.output_names = check_names(outputs, chain.n_outputs, "outputs")


def columns(chain: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A chain's (model's or pipeline's) input and output names, ``x0..``/``y0..`` where no one named them."""
    return (
        chain.input_names or default_names("x", chain.n_inputs),
        chain.output_names or default_names("y", chain.n_outputs),
    )


def name_pipeline(
    pipeline: Any, stages: Sequence[Any], inputs: Sequence[str] | None, outputs: Sequence[str] | None
) -> None:
    """A pipeline's columns: the user's, else its input as its first reader names it and its output as its stages
    name theirs (``STAGE_k`` for a stage's unnamed column); a name two stages give is refused."""
    from exporter.ir.pipeline import INPUT

    if inputs is not None:
        pipeline.input_names = check_names(inputs, pipeline.n_inputs, "inputs")
    else:
        found: list[str | None] = [None] * pipeline.n_inputs
        for stage, ex in zip(pipeline.stages, stages, strict=True):
            offset = 0
            for read in stage.reads:
                for k in range(read.start, read.stop):
                    if read.source == INPUT and found[k] is None and ex.chain.input_names:
                        found[k] = ex.chain.input_names[offset + k - read.start]
                offset += read.width
        named = [n for n in found if n is not None]
        pipeline.input_names = tuple(named) if len(named) == len(found) and len(set(named)) == len(named) else None
    if outputs is not None:
        pipeline.output_names = check_names(outputs, pipeline.n_outputs, "outputs")
        return
    by_source = {INPUT: columns(pipeline)[0]}
    for stage, ex in zip(pipeline.stages, stages, strict=True):
        by_source[stage.name] = ex.chain.output_names or tuple(f"{stage.name}_{k}" for k in range(stage.n_outputs))
    names = [n for read in pipeline.output for n in by_source[read.source][read.start : read.stop]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError("outputs", f"{twice[0]!r}: two of the output columns have this name: name them (outputs)")
    pipeline.output_names = tuple(names)
