"""Errors that are the user's to fix: the CLI prints them without a traceback and exits with 2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.common.escaping import terminal_line
from exporter.common.plural import noun

# The command's exit codes: what a build system or a script reads of the outcome.
EXIT_OK, EXIT_PARITY, EXIT_USER = 0, 1, 2
EXIT_INTERNAL = 3  # a bug of the exporter, not the user's input: never mistaken for a failed parity check
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class ExportError(Exception):
    """A user mistake (bad file, bad flag, unsupported model): message only, exit code 2."""

    # One line, so the command line shows any newline in it escaped: it came from a name in a file and
    # would start a line of its own. True where the message has lines by design (each one escaped).
    multiline = False


class NotInvertible(ExportError):
    """A step without an inverse was asked for one."""

    @classmethod
    def function_transformer(cls, name: str, func: str) -> NotInvertible:
        """A FunctionTransformer without ``inverse_func``: scikit-learn's ``inverse_transform`` is then the
        identity, and a target transform undone by the identity would silently leave the network's outputs
        as ``func`` of the targets."""
        return cls(
            f"{name}: FunctionTransformer({func}) has no inverse_func, so its inverse_transform returns its input "
            f"unchanged (not the inverse of {func}); fit it with inverse_func=... to undo it"
        )


class InputError(ExportError):
    """A bad value of one named input (``n_inputs``, ``log_columns``...).

    Raised by the frontends and the API, which know the input by its Python name only; the model
    spec re-words it the way the user wrote it (``--n-inputs`` on the command line, the manifest's
    ``[models.X] n_inputs``). ``message`` starts with the value, e.g. ``"0: must be positive"``;
    ``others`` are the fields it names as ``{field}``, so that they are re-worded too.
    """

    def __init__(self, field: str, message: str, others: tuple[str, ...] = ()):
        self.field = field
        self.template = message
        self.others = others
        self.message = self.worded(str)  # the other fields under their Python names
        super().__init__(f"{field} {self.message}")

    def worded(self, word: Callable[[str], str]) -> str:
        """The message with the other fields it names in the user's words (``word``: field -> word)."""
        text = self.template
        for name in self.others:
            text = text.replace("{" + name + "}", word(name))
        return text


@dataclass(frozen=True)
class Problem:
    """One thing in a model that stands in the way of exporting it."""

    layer: str  # a layer's name, or a transformer's step path
    cls: str
    reason: str
    kind: str = "layer"

    def __str__(self) -> str:
        # one line of the refusal list whatever the file's names hold (the CLI escapes the rest)
        return terminal_line(f"{self.kind} '{self.layer}' ({self.cls}): {self.reason}")


class UnsupportedModelError(ExportError):
    """Every unsupported layer of a model at once, so the user fixes them in one go."""

    multiline = True  # one line per problem, each escaped by ``Problem.__str__``

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        kinds = "/".join(noun(len(problems), kind) for kind in sorted({p.kind for p in problems}))
        super().__init__(f"{source}: cannot export {len(problems)} {kinds}:\n{lines}")


class UntrustedError(ExportError):
    """A file names a class or function of a module the user has not said they trust.

    The message says how to trust it; the model spec re-words that hint the way the user
    gives settings (``--trust M`` on the command line, ``trust = ["M"]`` in a manifest).
    """

    def __init__(self, path: str, module: str, name: str):
        self.path, self.module, self.name = path, module, name
        super().__init__(self.worded(f'trust=["{module}"]'))

    def worded(self, how: str) -> str:
        """The message, ``how`` being the setting that trusts the module in the user's words."""
        return (
            f"{self.path}: refusing to load {self.module}.{self.name} from your module {self.module}: "
            f"loading it runs that module's code. If you trust it, add {how}"
        )


class Float64Unavailable(Exception):
    """A framework cannot compute a model in float64 here (the message says why): its parity is then
    judged by the fixed rule, and the verdict says so."""
