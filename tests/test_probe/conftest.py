"""Probe results against the lab, made once per session and shared by the tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckOptions, ProbeConfig
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab

QNAME = "www.lab.test"


@pytest.fixture(scope="session")
def probe_lab(lab: Lab) -> Callable[..., TargetResult]:
    """``probe_lab(variant, pins=())``: the full probe of a lab resolver, cached."""
    cache: dict[tuple[str, tuple[str, ...]], TargetResult] = {}

    def probe(variant: str, pins: tuple[str, ...] = ()) -> TargetResult:
        key = (variant, pins)
        if key not in cache:
            resolver = lab[variant]
            # A short idle wait: the keepalive check's own tests measure idle closes.
            config = ProbeConfig(
                ca_file=str(lab.ca), pins=pins, qname=QNAME, timeout=2.0,
                options=CheckOptions(max_idle_wait=3.0),
            )  # fmt: skip
            target = parse_target(f"{resolver.hostname}@{resolver.address}")
            cache[key] = run_target(target, config)
        return cache[key]

    return probe
