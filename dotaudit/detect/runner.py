"""Runs the detectors over one capture's events, the way ``analyze`` does.

The session stage (``detect/session_assembly.py``) goes first: it sees the events it
reads before any detector does and emits its derived events at once, to the detectors
that subscribe to them. Every other event goes only to the detectors whose
``event_types`` name its type. When the events end, each detector finishes, and the
policy's severity overrides are applied to all findings, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dotaudit.detect.base import Context, Detector, Section
from dotaudit.detect.incidents import link_related
from dotaudit.detect.registry import DETECTORS
from dotaudit.detect.session_assembly import SessionStage
from dotaudit.model.events import Event
from dotaudit.model.findings import Finding
from dotaudit.model.policy import apply_severity_overrides

Handler = Callable[[Event], None]


@dataclass
class Detection:
    """What the detectors found in one capture."""

    findings: list[Finding]
    sections: dict[str, Section]
    caps: dict[str, int] = field(default_factory=dict)
    """Counts of what the caps of the session stage and of the detectors cut, by name,
    where they bit."""


class DetectorRunner:
    """``feed`` every event in capture order, then ``finish`` once: finishing lets go of
    the detectors."""

    def __init__(self, context: Context, detectors: Iterable[type[Detector]] = DETECTORS) -> None:
        self.context = context = context.for_one_run()
        self.detectors = [cls(context) for cls in detectors]
        self._routes: dict[type[Event], list[Handler]] = {}
        for detector in self.detectors:
            for event_type in detector.event_types:
                self._routes.setdefault(event_type, []).append(detector.on_event)
        self._stage: SessionStage | None = None
        if any(event_type in self._routes for event_type in SessionStage.emits):
            self._stage = SessionStage(context.policy, self.feed, context.track.names)
            for event_type, handler in self._stage.handlers().items():
                self._routes[event_type] = [handler, *self._routes.get(event_type, ())]
        self._keepers = [
            d.keeps_flow for d in self.detectors if type(d).keeps_flow is not Detector.keeps_flow
        ]
        self._spent = False

    def keeps_flow(self, hello: Event) -> bool:
        """Does a detector use every packet of this ClientHello's or QUIC Initial's flow
        (:meth:`Detector.keeps_flow`)? Such a flow is never bypassed."""
        return any(keeps(hello) for keeps in self._keepers)

    def feed(self, event: Event) -> None:
        for handle in self._routes.get(type(event), ()):
            handle(event)

    def shared_facts(self) -> dict[str, Any]:
        """What each detector knows about servers from this run's clients, by detector
        name (see ``Detector.shared_facts``): a distributed run merges these across its
        shares with :func:`merge_shared_facts` and passes the result to ``finish``."""
        facts = {}
        for detector in self.detectors:
            share = detector.shared_facts()
            if share is not None:
                facts[detector.name] = share
        return facts

    def finish(self, shared_facts: Mapping[str, Any] | None = None) -> Detection:
        if self._spent:
            # A second finish would find nothing left and say so as if nothing was found.
            raise RuntimeError("a DetectorRunner finishes once")
        self._spent = True
        if shared_facts is not None:
            for detector in self.detectors:
                if detector.name in shared_facts:
                    detector.adopt_shared_facts(shared_facts[detector.name])
        # Each part's state is let go as soon as what it found is out, so that the peak is
        # about the larger of the state and the report, not their sum: the session
        # stage's window first (no detector reads it any more), then each detector after
        # its findings and rows. The runner is spent afterwards.
        caps = self._stage.caps() if self._stage is not None else {}
        self._stage = None
        self._routes.clear()
        self._keepers.clear()
        findings: list[Finding] = []
        sections: dict[str, Section] = {}
        detectors, self.detectors = self.detectors, []
        while detectors:
            detector = detectors.pop(0)
            findings.extend(detector.finish())
            for name, rows in detector.sections().items():
                sections.setdefault(name, []).extend(rows)
            for name, count in detector.caps().items():
                caps[name] = caps.get(name, 0) + count
            del detector
        findings = link_related(apply_severity_overrides(findings, self.context.policy))
        return Detection(findings, sections, caps)


def merge_shared_facts(
    shares: Iterable[Mapping[str, Any]], detectors: Iterable[type[Detector]] = DETECTORS
) -> dict[str, Any]:
    """The shares' ``DetectorRunner.shared_facts`` merged, detector by detector."""
    by_name: dict[str, list[Any]] = {}
    for share in shares:
        for name, facts in share.items():
            by_name.setdefault(name, []).append(facts)
    return {
        cls.name: cls.merge_shared_facts(by_name[cls.name])
        for cls in detectors
        if cls.name in by_name
    }


def run_detectors(
    events: Iterable[Event],
    context: Context | None = None,
    detectors: Iterable[type[Detector]] = DETECTORS,
) -> Detection:
    """Every event through a ``DetectorRunner`` (all registered detectors by default)."""
    runner = DetectorRunner(context or Context(), detectors)
    for event in events:
        runner.feed(event)
    return runner.finish()
