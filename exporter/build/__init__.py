"""Build: generated C compiled into a shared library the way Lamarr compiles it, and loaded with cffi."""
