"""``lamarr-export MODEL``: export, compile, prove parity, write. Exit 0 ok, 1 parity failure, 2 user error.

``lamarr-export inspect MODEL`` prints the model as the exporter sees it (exit 0 exportable, 2 not);
``lamarr-export MODELS.toml`` exports a manifest's models into one library.
Under ``--json`` stdout carries one JSON document and nothing else (see ``exporter/report/schema.json``);
progress lines go to stderr, and not at all under ``--quiet`` or ``--json``.

One module per command: ``parser`` (the flags), ``export``, ``inspect``, ``manifest``. Each turns
its flags into a spec and hands it to ``exporter.pipeline``; none repeats a step of it.
"""

from __future__ import annotations

import gc
import os
import sys

from exporter import interrupt
from exporter.cli.output import emit
from exporter.cli.parser import EXIT_INTERRUPTED, EXIT_USER, inspect_parser, parser
from exporter.errors import ExportError
from exporter.escaping import terminal_line
from exporter.report.document import error_document, to_json


def main(argv: list[str] | None = None) -> int:
    from exporter.cli.export import run
    from exporter.cli.inspect import run_inspect

    argv = list(sys.argv[1:] if argv is None else argv)
    inspecting = argv[:1] == ["inspect"]  # a model file named 'inspect' would need './inspect'
    p = inspect_parser() if inspecting else parser()
    p.json_errors = "--json" in argv
    args = p.parse_args(argv[1:] if inspecting else argv)
    try:
        with interrupt.recorded():
            return run_inspect(args) if inspecting else run(args)
    except ExportError as err:
        emit(f"lamarr-export: error: {err if err.multiline else terminal_line(err)}\n", sys.stderr)
        if args.json:
            emit(to_json(error_document(err)))
        return EXIT_USER
    except KeyboardInterrupt:  # Ctrl-C: files are written last, all at once, so none is left half-written
        emit("lamarr-export: interrupted\n", sys.stderr)
        return EXIT_INTERRUPTED


def entry_point() -> None:
    """The command: ``main``, then the process ends without the interpreter's teardown.

    Why: once Keras, JAX and scikit-learn are imported, Python's teardown of their modules takes about
    a second, a third of a whole export, after everything is done. By then every file is written and
    closed (all at once, by rename), and the output streams are flushed here; what the export held
    (the compiled library's temporary folder) is released by the collection below, so nothing of ours
    is left behind. ``main`` itself (tests, callers in Python) returns as usual.
    """
    code = main()
    gc.collect()  # temporary folders of objects in reference cycles: removed by their finalizers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["entry_point", "main"]
