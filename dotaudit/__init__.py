"""dotaudit: audit what encrypted-DNS traffic leaks, and whether a DoT resolver can be trusted."""

__version__ = "0.1.0"
