"""The package version, in its own module so that any layer can record it without
importing the package's `__init__` (which imports every layer)."""

__version__ = "0.2.0"
