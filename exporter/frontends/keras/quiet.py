"""Keep the frameworks quiet: the C++ log lines TensorFlow prints while it loads (they bypass
TF_CPP_MIN_LOG_LEVEL), numpy's floating-point warnings while Keras computes the reference, and
the length of the error texts quoted in messages."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the duration: TensorFlow's C++ side writes there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


BRIEF = 240  # characters of a framework's error text a message quotes


def brief(err: BaseException, limit: int = BRIEF) -> str:
    """A framework exception's text for a one- or two-line message: whitespace folded to one line, and
    when long (Keras quotes whole configurations, kilobytes of them) its start and its end kept, with
    a note of what was cut between. Keras wraps a failure in one "could not be deserialized" paragraph
    per enclosing object, each quoting its configuration: the reason is the innermost, last one."""
    innermost = str(err).rsplit("Exception encountered:", 1)[-1]  # Keras nests its causes, each with its config
    text = " ".join(innermost.split()) or type(err).__name__
    if len(text) <= limit:
        return text
    head, tail = limit // 3, limit - limit // 3
    return f"{text[:head]} [... {len(text) - head - tail:,} characters cut ...] {text[-tail:]}"
