"""What every stage uses: errors, escaping for each destination, atomic files, progress, Ctrl-C, plurals."""
