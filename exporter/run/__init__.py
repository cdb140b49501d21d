"""One export run: its steps (load, render, compile, check, write), and the text it prints."""
