"""Distributed analysis on a Dask cluster (``dotaudit analyze --cluster``); docs/scale.md."""
