"""The Jinja environment the backend renders with, and where the shipped templates are."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

import jinja2

from exporter.backend.literals import (
    c_array,
    c_bound,
    c_bounds,
    c_double,
    c_doubles,
    c_float,
    c_ints,
    c_values,
    c_words,
)
from exporter.common.escaping import c_comment
from exporter.ir.sums import partial_sums


def shipped_dir(name: str, marker: str) -> Path:
    """A folder that ships inside the wheel as exporter/<name>; in a checkout it sits at the top."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / name, here.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(f"{name}/ not found next to {here}")


def template_dir() -> Path:
    return shipped_dir("templates", "model.c.j2")


def _fail(message: str) -> NoReturn:
    raise jinja2.TemplateError(message)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # compiled templates kept between runs (keyed by their source's checksum): every export and
        # inspect would otherwise compile the same templates again
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )
    env.filters.update(c_float=c_float, c_array=c_array, c_comment=c_comment, c_double=c_double, c_doubles=c_doubles)
    env.filters.update(c_bound=c_bound, c_bounds=c_bounds, c_ints=c_ints, c_values=c_values, c_words=c_words)
    env.globals.update(fail=_fail, inf=math.inf, partial_sums=partial_sums)
    return env
