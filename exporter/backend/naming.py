"""C symbol names: derived from a file name, or checked when the user gives one.

The generated file is compiled as C and as C++ and includes <math.h>, so a symbol must
be neither a keyword of either language nor a name that header declares.
"""

from __future__ import annotations

import re

from exporter.errors import InputError

C_KEYWORDS = set(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile while _Bool _Complex _Imaginary""".split()
)
CPP_KEYWORDS = set(
    """alignas alignof and and_eq asm bitand bitor bool catch char16_t char32_t char8_t class compl
    concept consteval constexpr constinit const_cast co_await co_return co_yield decltype delete
    dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq nullptr
    operator or or_eq private protected public reinterpret_cast requires static_assert static_cast
    template this thread_local throw true try typeid typename using virtual wchar_t xor xor_eq""".split()
)
_MATH_FUNCTIONS = """acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1
    frexp ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc
    lgamma tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder
    remquo copysign nan nextafter nexttoward fdim fmax fmin fma""".split()
MATH_NAMES = {f + suffix for f in _MATH_FUNCTIONS for suffix in ("", "f", "l")} | set(
    """fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal isless islessequal
    islessgreater isunordered float_t double_t main""".split()
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_symbol(name: str) -> str:
    """Return ``name`` if it can be the exported C symbol, else explain why not."""
    if not _IDENTIFIER.match(name):
        raise InputError("name", f"{name!r}: not a C identifier (letters, digits and _, not starting with a digit)")
    if name in C_KEYWORDS or name in CPP_KEYWORDS:
        raise InputError("name", f"{name!r}: a C or C++ keyword cannot be a function name")
    if name in MATH_NAMES:
        raise InputError("name", f"{name!r}: clashes with a name <math.h> declares")
    if name.startswith("__") or re.match(r"_[A-Z]", name):
        raise InputError("name", f"{name!r}: names starting with __ or _ and a capital are reserved in C")
    return name


def symbol_from_stem(stem: str) -> str:
    """A valid symbol made from a file's stem: invalid characters become _, clashes get a suffix."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem).lstrip("_") or "model"
    if name[0].isdigit():
        name = f"model_{name}"
    if name in C_KEYWORDS | CPP_KEYWORDS | MATH_NAMES:
        name = f"{name}_model"
    return check_symbol(name)
