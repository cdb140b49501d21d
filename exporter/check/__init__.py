"""Check: does the compiled C compute what the framework computes? Inputs, comparison, verdicts, trace, report."""
