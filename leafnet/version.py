"""The package version (one place; setup.cfg and `leafnet --version` read it)."""

__version__ = "0.1.0"
