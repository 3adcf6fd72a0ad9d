"""Only for ``dotaudit/cli.py``, which the CLI package replaces: pins live in
:mod:`dotaudit.x509`. Delete this module once the CLI imports ``normalise_pin`` from there."""

from dotaudit.x509 import normalise_pin

__all__ = ["normalise_pin"]
