"""The package version, in a module of its own so the core can report it without importing
the package's entry points."""

__version__ = "0.1.0"
