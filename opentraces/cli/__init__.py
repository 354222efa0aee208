"""The command line: a thin click layer over the library (the only code that
reads the environment, prints, or exits)."""
