"""The console command ``lamarr-export``: ``exporter.cli.main`` with the process's own ending.

Kept apart from ``exporter.cli`` so that the command's first statement is already inside the ``try``
that turns Ctrl-C into exit 130: importing the CLI takes a fifth of a second, and a Ctrl-C landing in
it printed a ``KeyboardInterrupt`` traceback and exited -2. (Only Python's own start-up, before any
of this package runs, is left uncovered.)
"""

from __future__ import annotations

import gc
import os
import sys

from exporter.common.errors import EXIT_INTERRUPTED


def entry_point() -> None:
    """``main``, then the process ends without the interpreter's teardown.

    Why: once Keras, JAX and scikit-learn are imported, Python's teardown of their modules takes about
    a second, a third of a whole export, after everything is done. By then every file is written and
    closed (all at once, by rename), and the output streams are flushed here; what the export held
    (the compiled library's temporary folder) is released by the collection below, so nothing of ours
    is left behind. ``main`` itself (tests, callers in Python) returns as usual.
    """
    try:
        from exporter.cli import main  # inside the try: a Ctrl-C during this import is caught below

        code = main()
    except KeyboardInterrupt:
        print("lamarr-export: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    gc.collect()  # temporary folders of objects in reference cycles: removed by their finalizers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
