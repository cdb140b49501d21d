"""``lamarr-export MODEL``: export, compile, prove parity, write.

Exit codes (``exporter.common.errors``): 0 ok, 1 parity failure, 2 user error, 3 internal error (a bug of
the exporter: never read as a failed parity check), 130 interrupted.
``lamarr-export inspect MODEL`` prints the model as the exporter sees it (exit 0 exportable, 2 not);
``lamarr-export MODELS.toml`` exports a manifest's models into one library.
``lamarr-export check LIB.so`` lists a built library's functions and runs their self-tests (exit 0 all pass, 1 not).
Under ``--json`` stdout carries one JSON document and nothing else (see ``exporter/check/report/schema.json``);
progress lines go to stderr, and not at all under ``--quiet`` or ``--json``.

One module per command: ``parser`` (the flags), ``export``, ``inspect``, ``manifest``. Each turns
its flags into a spec and hands it to ``exporter.run.steps``; none repeats a step of it. The console
entry point is ``exporter.command``.
"""

from __future__ import annotations

import os
import sys
import traceback

from exporter.check.report.document import error_document, to_json
from exporter.cli.output import emit
from exporter.cli.parser import inspect_parser, parser
from exporter.common import interrupt
from exporter.common.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER, ExportError
from exporter.common.escaping import terminal_line
from exporter.common.version import __version__

# set to 1 to see the traceback of an internal error (a bug report's most useful part)
TRACEBACK_VARIABLE = "LAMARR_EXPORT_TRACEBACK"


def main(argv: list[str] | None = None) -> int:
    from exporter.cli.check import check_parser, run_check
    from exporter.cli.export import run
    from exporter.cli.inspect import run_inspect

    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv[:1] in (["inspect"], ["check"]) else None  # a model file named 'inspect': './inspect'
    p = {"inspect": inspect_parser, "check": check_parser}.get(command or "", parser)()
    p.json_errors = "--json" in argv  # type: ignore[attr-defined]
    args = p.parse_args(argv[1:] if command else argv)
    try:
        with interrupt.recorded():
            return {"inspect": run_inspect, "check": run_check}.get(command or "", run)(args)
    except ExportError as err:
        emit(f"lamarr-export: error: {err if err.multiline else terminal_line(err)}\n", sys.stderr)
        if args.json:
            emit(to_json(error_document(err)))
        return EXIT_USER
    except KeyboardInterrupt:  # Ctrl-C: files are written last, all at once, so none is left half-written
        emit("lamarr-export: interrupted\n", sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # not the user's mistake: say so, apart from exit 1 (parity) and 2 (input)
        return _internal_error(err, json=args.json)


def _internal_error(err: Exception, json: bool) -> int:
    """One line saying it is the exporter's bug and how to report it; the traceback only when asked for."""
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    message = f"internal error ({type(err).__name__}{': ' + first if first else ''})"
    if os.environ.get(TRACEBACK_VARIABLE) == "1":
        traceback.print_exc()
    emit(
        f"lamarr-export: {terminal_line(message)}. This is a bug of lamarr-export {__version__}, not of your model: "
        f"please report it to its maintainers with the command you ran ({TRACEBACK_VARIABLE}=1 prints the traceback)\n",
        sys.stderr,
    )
    if json:
        emit(to_json(error_document(message, EXIT_INTERNAL)))
    return EXIT_INTERNAL


__all__ = ["main"]
