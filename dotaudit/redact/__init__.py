"""Redaction for handing reports over: pseudonymised addresses, masked names.

``key`` holds the secret, ``cryptopan`` the prefix-preserving address pseudonyms,
``names`` the name masks, ``redactor`` the decisions of one run and the free-text pass,
``report`` the redaction of a whole ``AuditReport``. Evidence pcaps are rewritten in
``dotaudit.capture.redact_frames`` with the same ``Redactor``.

This package sits beside ``model``: it imports only ``model`` and ``errors``, so that
``capture`` (evidence pcaps) and the command line can both use it.
"""

from dotaudit.redact.key import KeyFileError, RedactionKey, load_or_create_key
from dotaudit.redact.names import NameLevel
from dotaudit.redact.redactor import RedactionConfig, Redactor
from dotaudit.redact.report import RedactionError, merged_redaction, redact_report, redactor_for

__all__ = [
    "KeyFileError",
    "NameLevel",
    "RedactionConfig",
    "RedactionError",
    "RedactionKey",
    "Redactor",
    "load_or_create_key",
    "merged_redaction",
    "redact_report",
    "redactor_for",
]
