"""Pytest configuration. Shared helpers live in `helpers.py` (imported as `from helpers import ...`);
real public data is read in place from ../shared/data (never copied)."""
