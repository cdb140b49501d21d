"""Text from files made safe for where it is written: one function per target, each admitting a safe alphabet.

Names and strings read from model files (layer and model names, scikit-learn step names, file names)
reach generated C, the reference-rows file CMake reads, the build's dependency list, the report page
and the terminal. Each target has one function here and every such string goes through it:

- ``c_comment``: inside ``/* ... */``. Admits printable ASCII without ``\\`` (line splicing,
  ``\\`` + CR/LF, joins lines in translation phase 2); ``*/``, ``/*`` and ``??`` (trigraphs:
  ``??/`` is a backslash under ``-trigraphs``/``-std=c99``) are broken by a space; every other
  character becomes ``<NN>``, the hex of its UTF-8 bytes. Ordinary names come out unchanged.
- ``one_line``: a line of a line-oriented text file (the reference rows, which CMake greps by line
  start): printable ASCII, the rest ``<NN>``.
- ``cmake_list_item``: a path on ``--depends``'s output, which CMake splits on newlines and uses as a
  list: refused (``ValueError``) when it holds a newline, ``;``, unbalanced ``[ ]`` or ``$<``.
- ``terminal``: a message for a terminal: C0 controls (but the message's own newlines), DEL, C1
  controls, Unicode line separators, bidirectional overrides and isolates, and lone surrogates shown
  as ``\\x1b``, ``\\u202e``. Applied where the command line prints (``exporter.cli.output``,
  ``exporter.common.progress``); ``terminal_line`` (newlines escaped too) where a file's name enters a
  multi-line message (refused layers, step tables), so that a name cannot forge a line of its own.
- ``c_string``: a C string's initializer (``SYMBOL_info``'s JSON, which quotes file names): printable
  ASCII but ``\\``, ``"`` and ``?`` (trigraphs) as is, those three backslashed, every other byte as a
  3-digit octal escape; in literals of at most ``C_PIECE`` characters, at most ``C_STRING_MAX`` in all
  (C99's minimum limit, which ``-pedantic`` enforces), a brace list of byte values beyond.
- ``visible``: ``terminal`` for the report page (``finalize`` of its Jinja environment, before the
  autoescaping that handles ``& < > " '``).

No TOML or shell text is written from a file's strings; symbols and stage names
that are printed as C code are checked identifiers (``exporter.backend.naming``), not escaped.
"""

from __future__ import annotations

import re

_PRINTABLE = {chr(c) for c in range(0x20, 0x7F)}
_C_COMMENT_PAIRS = ("*/", "/*", "??")

# Bidirectional embeddings, overrides and isolates (Trojan Source), marks, and Unicode's line separators.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_CONTROLS = "".join(map(chr, [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])) + _BIDI
# and lone surrogates: a file name's undecodable bytes (surrogateescape), which a UTF-8 stream cannot write
_TERMINAL = re.compile(f"[{re.escape(_CONTROLS.replace(chr(10), ''))}\ud800-\udfff]")
_TERMINAL_ALL = re.compile(f"[{re.escape(_CONTROLS)}\ud800-\udfff]")


def _hex_bytes(ch: str) -> str:
    return "".join(f"<{b:02x}>" for b in ch.encode("utf-8", "surrogatepass"))


def one_line(text: object) -> str:
    """``text`` as printable ASCII on one line: why: a line-oriented reader (CMake's ``file(STRINGS)``)
    must not find a second line, nor a byte its encoding cannot carry, in a name."""
    return "".join(ch if ch in _PRINTABLE else _hex_bytes(ch) for ch in str(text))


def c_comment(text: object) -> str:
    """``text`` safe inside a C ``/* */`` comment on one line, whatever the compiler's translation phases do.

    Why each rule: a backslash before a newline (CR or LF) splices the next line into the comment's,
    so ``\\``, CR and LF are escaped; ``??/`` is a backslash where trigraphs are on, so ``??`` never
    appears; ``*/`` would end the comment and ``/*`` nested in it is an error under ``-Werror``.
    A space goes between the two characters of such a pair, also where escaping made one.
    """
    out: list[str] = []
    for ch in str(text):
        kept = ch if ch in _PRINTABLE and ch != "\\" else _hex_bytes(ch)
        for c in kept:
            if out and out[-1] + c in _C_COMMENT_PAIRS:
                out.append(" ")
            out.append(c)
    return "".join(out)


def cmake_list_item(text: str) -> str:
    """``text`` if CMake reads it back as one element of a newline-separated list, else ``ValueError``.

    Why refuse, not escape: the reader (``LamarrExport.cmake``) turns lines into a ``;`` list used
    unquoted, where ``;`` and a newline separate elements, ``;`` inside ``[ ]`` does not, and ``$<``
    starts a generator expression; no escape of these survives that round trip.
    """
    bad = [c for c in ("\n", "\r", ";", "$<") if c in text]
    if text.count("[") != text.count("]"):
        bad.append("[" if text.count("[") > text.count("]") else "]")
    if bad:
        raise ValueError(f"CMake cannot read a path with {bad[0]!r} in a list of files")
    return text


C_PIECE = 100  # characters of one literal: one line of the generated file each
C_STRING_MAX = 4095  # C99 5.2.4.1: the longest string literal (after concatenation) every compiler must take


def _c_char(byte: int) -> str:
    ch = chr(byte)
    if ch in '\\"?':
        return "\\" + ch
    return ch if ch in _PRINTABLE else f"\\{byte:03o}"


def c_string(text: str, indent: str = "    ") -> str:
    """The initializer of a ``static const char NAME[]`` holding ``text`` (UTF-8), safe in C99 and C++.

    Why so: a file name may hold any byte; ``"`` or ``\\`` would end or bend the literal, ``??/`` is a
    backslash where trigraphs are on, a raw newline is an error, and a hex escape swallows the hex digits
    after it (octal stops at three). Literals are split one per line; past ``C_STRING_MAX`` bytes the
    text is a brace list of octal character constants, which no length limit applies to.
    """
    data = text.encode("utf-8", "surrogateescape")
    if len(data) >= C_STRING_MAX:
        rows = [", ".join(f"'\\{b:03o}'" for b in data[i : i + 16]) for i in range(0, len(data), 16)]
        return "{\n" + ",\n".join(indent + row for row in rows) + ", 0\n}"
    pieces = [data[i : i + C_PIECE] for i in range(0, len(data), C_PIECE)] or [b""]
    return "\n".join(indent + '"' + "".join(_c_char(b) for b in piece) + '"' for piece in pieces)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: object, newlines: bool = True) -> str:
    """``text`` with every character that moves the cursor, erases, recolours or reorders shown as an escape.

    Why: a layer name holding ``ESC [2K`` and CR would erase the line and print its own
    ``lamarr-export: ok``. ``newlines=True`` keeps line feeds (the tool's own multi-line messages);
    a name put into such a message is escaped with ``newlines=False`` first.
    """
    return (_TERMINAL if newlines else _TERMINAL_ALL).sub(_escape, str(text))


def terminal_line(text: object) -> str:
    """``terminal`` with newlines escaped too: a name from a file put into a message of several lines."""
    return terminal(text, newlines=False)


def visible(value: object) -> object:
    """A string as ``terminal`` shows it (a newline is only white space in HTML); any other value unchanged.

    The report's Jinja ``finalize``: markup is the autoescaping's, this makes the rest of a name seen as it is.
    """
    return terminal(value) if isinstance(value, str) else value
