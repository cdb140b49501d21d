"""The tool's version, quoted in every generated file."""

__version__ = "0.1.0"
