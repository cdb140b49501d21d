"""C symbol names: derived from a file name, or checked when the user gives one.

The generated file is compiled as C and as C++ and includes <math.h>, <stddef.h>, <stdint.h> and
<string.h>, so a symbol must be neither a keyword of either language nor a name those headers
declare; it is linked into programs, so it must not be a function of the C or POSIX library either.
Nor may it be a name the generated code spells without the symbol's prefix (its locals, parameters,
macro parameters, attribute words: ``GENERATED_NAMES``): a local ``n`` hides the function ``n`` from
the ``n_batch`` that calls it. tests/test_symbols.py checks that list against the templates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from exporter.common.errors import InputError

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
MATH_NAMES = (
    {f + suffix for f in _MATH_FUNCTIONS for suffix in ("", "f", "l")}
    | set(
        """fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal isless islessequal
    islessgreater isunordered float_t double_t main""".split()
    )
    | set(  # its macros (and POSIX's constants), which would rewrite the function's declaration
        """HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO
    FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO MATH_ERREXCEPT math_errhandling
    M_E M_LOG2E M_LOG10E M_LN2 M_LN10 M_PI M_PI_2 M_PI_4 M_1_PI M_2_PI M_2_SQRTPI M_SQRT2 M_SQRT1_2""".split()
    )
)
# <stddef.h>'s and <stdint.h>'s types and macros: a function named so is a redeclaration or a macro expansion
TYPE_NAMES = set("size_t ptrdiff_t max_align_t NULL".split())
_STDINT = re.compile(
    r"(?:u?int(?:_least|_fast)?(?:8|16|32|64)_t|u?int(?:ptr|max)_t"
    r"|U?INT(?:_LEAST|_FAST)?(?:8|16|32|64)_(?:MAX|MIN|C)|U?INT(?:PTR|MAX)_(?:MAX|MIN|C)"
    r"|(?:PTRDIFF|SIZE|SIG_ATOMIC|WCHAR|WINT)_(?:MAX|MIN))\Z"
)
# Every identifier the templates write without the symbol's prefix, other than keywords and the libraries'
# names: locals and parameters (a local of the same name hides the exported function from the code that
# calls it: `n_batch(..., size_t n)` calling `n`), macro parameters, and the words of pragmas and
# attributes. Refused as symbols, so that no template has to know which of its scopes call which function.
GENERATED_NAMES = set(
    """input output random n r k i j g b c t w x y acc tail xi top sum arg value node right p
    a d e f h l m q s u v z s1 s2 r2 xc iu large moderate half_f2 edge ah al
    lo hi mid slope xp fp prob span position start raw fraction mt expanded from picked lower upper
    isa level target visibility always_inline defined STDC FP_CONTRACT OFF
    kernel bias scale shift mean variance inverse base cut end half leaf leaves low step dot kept score
    GCC optimize push_options pop_options recurrent gx gh ti xt rr hh in o
    od oh ow id ih iw tih tiw at count row_a row_b col_a col_b frac_y frac_x v00 v01 v10 v11 noipa
    part aligned""".split()
)
_NUMBERED = re.compile(r"(?:x\d+_|x|acc|tail|part|r)\d+\Z")  # one per row of a block (x0, acc3, part1, x2_3...)
GUARD_SUFFIX = "_H_INCLUDED"  # a header's include guard: SYMBOL_H_INCLUDED, in capitals
# C99's library (every header but <math.h>, above) and POSIX's common functions and objects: a
# function exported under one of these names replaces the library's own for the whole program
# (``--name malloc`` links, and the program crashes in its first allocation), or clashes with its
# declaration where the generated file includes <string.h>.
LIBRARY_NAMES = set(
    """assert isalnum isalpha isblank iscntrl isdigit isgraph islower isprint ispunct isspace isupper
    isxdigit tolower toupper errno feclearexcept fegetexceptflag feraiseexcept fesetexceptflag
    fetestexcept fegetround fesetround fegetenv feholdexcept fesetenv feupdateenv imaxabs imaxdiv
    strtoimax strtoumax wcstoimax wcstoumax setlocale localeconv setjmp longjmp signal raise va_start
    va_arg va_copy va_end offsetof remove rename tmpfile tmpnam fclose fflush fopen freopen setbuf
    setvbuf fprintf fscanf printf scanf snprintf sprintf sscanf vfprintf vfscanf vprintf vscanf
    vsnprintf vsprintf vsscanf fgetc fgets fputc fputs getc getchar gets putc putchar puts ungetc
    fread fwrite fgetpos fseek fsetpos ftell rewind clearerr feof ferror perror stdin stdout stderr
    atof atoi atol atoll strtod strtof strtold strtol strtoll strtoul strtoull rand srand calloc free
    malloc realloc abort atexit exit _Exit getenv system bsearch qsort abs labs llabs div ldiv lldiv
    mblen mbtowc wctomb mbstowcs wcstombs memcpy memmove strcpy strncpy strcat strncat memcmp strcmp
    strcoll strncmp strxfrm memchr strchr strcspn strpbrk strrchr strspn strstr strtok memset
    strerror strlen clock difftime mktime time asctime ctime gmtime localtime strftime btowc wctob
    fwprintf fwscanf swprintf swscanf vfwprintf vfwscanf vswprintf vswscanf vwprintf vwscanf wprintf
    wscanf fgetwc fgetws fputwc fputws fwide getwc getwchar putwc putwchar ungetwc wcstod wcstof
    wcstold wcstol wcstoll wcstoul wcstoull wcscpy wcsncpy wmemcpy wmemmove wcscat wcsncat wcscmp
    wcscoll wcsncmp wcsxfrm wmemcmp wcschr wcscspn wcspbrk wcsrchr wcsspn wcsstr wcstok wmemchr
    wcslen wmemset wcsftime mbsinit mbrlen mbrtowc wcrtomb mbsrtowcs wcsrtombs iswalnum iswalpha
    iswblank iswcntrl iswdigit iswgraph iswlower iswprint iswpunct iswspace iswupper iswxdigit
    iswctype wctype towlower towupper towctrans wctrans
    open close read write lseek pread pwrite dup dup2 pipe fork vfork execv execve execvp execl execlp
    execle wait waitpid kill getpid getppid getuid geteuid getgid getegid sleep usleep nanosleep
    alarm pause chdir fchdir getcwd mkdir rmdir unlink link symlink readlink chmod fchmod chown
    fchown access stat fstat lstat truncate ftruncate fsync sync isatty ttyname umask mmap munmap
    mprotect msync select poll ioctl fcntl socket bind listen accept connect send recv sendto recvfrom
    shutdown getsockopt setsockopt dlopen dlsym dlclose dlerror pthread_create pthread_join
    pthread_self pthread_exit pthread_mutex_lock pthread_mutex_unlock opendir readdir closedir
    fdopen fileno popen pclose getline getdelim strdup strndup strnlen strtok_r strerror_r stpcpy
    posix_memalign aligned_alloc setenv unsetenv putenv mkstemp realpath basename dirname
    gettimeofday clock_gettime localtime_r gmtime_r environ optarg optind opterr optopt getopt
    sysconf signal sigaction sigemptyset sigaddset sigprocmask""".split()
)
MAX_LENGTH = 100
"""Longest symbol accepted: past it names stop being readable, and file names built from the symbol
(the build's ``<symbol>.c``, ``lib<symbol>.so``) approach the file system's limit of 255 bytes."""

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def clash(name: str) -> str | None:
    """Why the identifier ``name`` cannot be a symbol (a name the C sees already), or None if it can."""
    if name in C_KEYWORDS or name in CPP_KEYWORDS:
        return "a C or C++ keyword cannot be a function name"
    if name in MATH_NAMES:
        return "clashes with a name <math.h> declares"
    if name in LIBRARY_NAMES:
        return "a function or object of the C or POSIX library (it would replace it)"
    if name in TYPE_NAMES or _STDINT.match(name):
        return "a type or macro of <stddef.h> or <stdint.h>, which the generated file includes"
    if name in GENERATED_NAMES or _NUMBERED.match(name):
        return "a name the generated code uses for its own variables, parameters or macros (it would hide the function)"
    if name.endswith(GUARD_SUFFIX):
        return f"names ending in {GUARD_SUFFIX} are the include guards of generated headers"
    if name.startswith("__") or re.match(r"_[A-Z]", name):
        return "names starting with __ or _ and a capital are reserved in C"
    return None


def check_symbol(name: str) -> str:
    """Return ``name`` if it can be the exported C symbol, else explain why not."""
    if not name:
        raise InputError("name", "'': an empty name; give a C identifier, or leave it out for the file's stem")
    if len(name) > MAX_LENGTH:
        raise InputError("name", f"{name[:20]!r}...: {len(name)} characters, at most {MAX_LENGTH}")
    if not IDENTIFIER.match(name):
        raise InputError("name", f"{name!r}: not a C identifier (letters, digits and _, not starting with a digit)")
    reason = clash(name)
    if reason:
        raise InputError("name", f"{name!r}: {reason}")
    return name


def symbol_from_stem(stem: str) -> str:
    """A valid symbol made from a file's stem: invalid characters become _, clashes get a suffix."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem).lstrip("_")[: MAX_LENGTH - len("model_")] or "model"
    if name[0].isdigit():
        name = f"model_{name}"
    if clash(name):  # int.c, n.c, size_t.c: the file keeps its name, the function gets a free one
        name = f"{name}_model"
    return check_symbol(name)


def shared_name(parts: Mapping[str, str], calls: Mapping[str, Collection[str]]) -> tuple[str, str] | None:
    """A symbol of one file's parts (symbol -> its C and header) that another part's code also uses, as
    ``(symbol, other)``; None if there is none. Every name a part makes starts with its symbol and _, so
    only such symbols are looked for (``cls_pick`` beside ``cls``, whose helper it is); ``calls``: the
    symbols a part calls (a pipeline's stages), which it names rightly. Comments are left out: a banner
    names the model's file, which may be spelled like a symbol."""
    for symbol in parts:
        for other, text in parts.items():
            if not symbol.startswith(other + "_") or symbol in calls.get(other, ()):
                continue
            code = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
            if re.search(rf"(?<!\w){re.escape(symbol)}(?!\w)", code):
                return symbol, other
    return None


def symbol_for(name: str | None, thing: Any, dtype: str = "float") -> str:
    """``name`` checked as a C symbol, or one made from the file's stem (or the model's name), ``_double`` added."""
    if name is not None:  # an empty --name is refused, not replaced by the stem
        return check_symbol(name)
    stem = Path(thing).stem if isinstance(thing, (str, os.PathLike)) else getattr(thing, "name", "model")
    return symbol_from_stem(stem + ("_double" if dtype == "double" else ""))
