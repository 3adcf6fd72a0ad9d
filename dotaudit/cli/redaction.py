"""``--redact`` for every command that writes a report (``analyze``, ``probe``, ``report``;
a future ``watch`` takes the same options): the options, the key, and the redacted
report and evidence (docs/redaction.md).

``--redact`` needs ``--redact-key FILE``. A key made up for one run would give
pseudonyms that match no other report and that nobody could map back; a default key
file would put a secret where nobody asked for one. Naming the file makes both choices
the admin's: the file is created (mode 0600) when missing, and its fingerprint printed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.cli import UsageError
from dotaudit.model.report import AuditReport

if TYPE_CHECKING:  # the redaction engine (cryptography, the suffix list) loads on --redact
    from dotaudit.redact import RedactionConfig, Redactor

NAME_LEVELS = ("none", "registrable", "all")
"""``--redact-names`` choices: the values of ``dotaudit.redact.NameLevel``."""
DEFAULT_NAME_LEVEL = "registrable"


def add_redaction_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("redaction (reports to hand over, docs/redaction.md)")
    group.add_argument(
        "--redact",
        action="store_true",
        help="pseudonymise client addresses (Crypto-PAn, prefix-preserving) and mask query "
        "names and SNI; needs --redact-key",
    )
    group.add_argument(
        "--redact-key",
        metavar="FILE",
        help="the secret that makes the pseudonyms: the same key gives the same pseudonyms "
        "in every report. Created with mode 0600 when missing (its fingerprint is printed); "
        "never hand it over",
    )
    group.add_argument(
        "--redact-names",
        choices=NAME_LEVELS,
        help="names kept to their registrable domain (default), replaced by tokens (all), "
        "or left alone (none)",
    )
    group.add_argument(
        "--redact-resolvers",
        action="store_true",
        help="pseudonymise resolver addresses and hide resolver names too (by default they "
        "stay: they are what the admin acts on)",
    )


@dataclass(frozen=True)
class Redaction:
    """A redaction asked for on the command line."""

    config: RedactionConfig

    def apply(self, report: AuditReport) -> tuple[AuditReport, Redactor]:
        """The redacted report and the redactor that made it (for the evidence pcaps)."""
        from dotaudit.redact import RedactionError, redact_report, redactor_for

        try:
            redactor = redactor_for(report, self.config)
            return redact_report(report, self.config, redactor), redactor
        except RedactionError as exc:
            raise UsageError(f"--redact: {exc}") from None

    def record(self, report: AuditReport, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` (one streamed line) redacted with the decisions ``report`` gives."""
        from dotaudit.redact import redactor_for
        from dotaudit.redact.report import redact_data

        return redact_data(record, redactor_for(report, self.config))

    def text(self, report: AuditReport, lines: list[str]) -> list[str]:
        """Terminal lines about ``report`` with what the redaction hides rewritten."""
        from dotaudit.redact import redactor_for

        redactor = redactor_for(report, self.config)
        return [redactor.text(line) for line in lines]


def redaction_options(args: argparse.Namespace) -> Redaction | None:
    """The redaction the command line asks for, None without ``--redact``. Checked before
    any work, so that a bad key file fails fast; a new key's fingerprint goes to stderr."""
    if not getattr(args, "redact", False):
        given = [
            flag
            for flag, value in (
                ("--redact-key", args.redact_key),
                ("--redact-names", args.redact_names),
                ("--redact-resolvers", args.redact_resolvers),
            )
            if value
        ]
        if given:
            raise UsageError(f"{', '.join(given)} only with --redact")
        return None
    if not args.redact_key:
        raise UsageError(
            "--redact needs --redact-key FILE: the key that makes the pseudonyms (created "
            "when missing; keep it to compare reports, never hand it over)"
        )
    from dotaudit.redact import RedactionConfig

    try:
        config, created = RedactionConfig.from_options(
            args.redact_key, args.redact_names or DEFAULT_NAME_LEVEL, args.redact_resolvers
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if created:
        print(
            f"dotaudit: created redaction key {args.redact_key} (mode 0600, fingerprint "
            f"{config.key.fingerprint}); keep it to get the same pseudonyms next time",
            file=sys.stderr,
        )
    return Redaction(config)


def write_redacted_evidence(
    original: AuditReport, redacted: AuditReport, redactor: Redactor, directory: str | Path
) -> int:
    """The evidence pcaps of ``redacted``, with every frame rewritten by ``redactor``.

    Planned from the redacted report, whose order (and so file numbering) the HTML links
    follow, but read from the original capture paths (a redacted path may not exist).
    Records what was rewritten in ``redacted.redaction["evidence"]``.
    """
    from dotaudit.capture.evidence import write_evidence
    from dotaudit.capture.redact_frames import FrameRewriter
    from dotaudit.model.evidence import plan_evidence

    if redacted is original:  # already redacted as asked: its paths are what was read
        findings = original.sorted_findings()
    else:
        # redact_report keeps the order of report.sorted_findings() in redacted.findings.
        paths = {
            id(new): old.file
            for old, new in zip(original.sorted_findings(), redacted.findings, strict=True)
        }
        findings = [replace(f, file=paths.get(id(f), f.file)) for f in redacted.sorted_findings()]
    rewriter = FrameRewriter(redactor)
    written = write_evidence(plan_evidence(findings), Path(directory), rewriter.rewrite)
    if redacted.redaction is not None:
        redacted.redaction["evidence"] = rewriter.summary()
    return written
