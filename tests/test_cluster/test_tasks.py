"""The cluster's tasks run in this process, one after another (``run_shares``): the
oracle is ``analyze``'s local serial run of the same inputs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from dotaudit.cluster.engine import run_shares
from dotaudit.cluster.tasks import client_share, map_capture, opened_locally
from dotaudit.detect.base import Context
from dotaudit.detect.partition import SHARED_EVENT_TYPES, client_of
from dotaudit.errors import InputError
from dotaudit.model.event_codec import decode_events
from dotaudit.model.policy import load_policy
from dotaudit.model.report import AuditReport
from dotaudit.pipeline import CaptureRun, analyze
from tests.conftest import ROOT

SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap*"))


def _canonical(report: AuditReport) -> dict[str, Any]:
    out = report.to_dict()
    out.pop("generated_at")
    for key, value in out.items():
        if isinstance(value, list) and key != "inputs":
            out[key] = sorted(json.dumps(item, sort_keys=True) for item in value)
    return out


@pytest.mark.parametrize("shares", [1, 2, 5])
def test_samples_in_shares_equal_the_local_run(shares: int) -> None:
    context = Context(policy=load_policy(ROOT / "pcaps" / "loopback-policy.toml"))
    local = analyze(list(SAMPLES), context)
    assert local.findings
    assert _canonical(run_shares([str(p) for p in SAMPLES], context, shares)) == _canonical(local)


def test_benchmark_mix_in_shares_equals_the_local_run(mixed_capture: Path) -> None:
    local = analyze([mixed_capture], Context())
    assert len(local.findings) > 50
    assert _canonical(run_shares([str(mixed_capture)], Context(), 4)) == _canonical(local)


def test_public_corpus_in_shares_equals_the_local_run(corpus: Path) -> None:
    captures = sorted(p for p in corpus.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap"))
    local = analyze(captures, Context())
    assert _canonical(run_shares([str(p) for p in captures], Context(), 3)) == _canonical(local)


def test_the_cluster_order_does_not_depend_on_the_share_count() -> None:
    urls = [str(p) for p in SAMPLES]
    one, five = run_shares(urls, Context(), 1), run_shares(urls, Context(), 5)
    assert one.to_dict() == five.to_dict()


def test_a_map_ships_every_event_a_detector_reads_once() -> None:
    path = ROOT / "pcaps" / "09-office.pcap"
    mapped = map_capture(str(path), 3, "office")
    shipped = [e for batch in mapped.shares.values() for e in decode_events(batch)]
    assert len(shipped) == mapped.events
    assert mapped.shuffled_bytes == sum(len(b) for b in mapped.shares.values())
    assert {e.file for e in shipped} == {"office"}  # named as asked, not by its path
    assert mapped.summary["path"] == "office"
    everything = list(CaptureRun(path, hash_input=False, name="office").events())
    kept = [e for e in everything if type(e) in SHARED_EVENT_TYPES]
    assert sorted(map(repr, shipped)) == sorted(map(repr, kept))
    for share, batch in mapped.shares.items():
        assert {client_share(client_of(e), 3) for e in decode_events(batch)} == {share}


def test_an_input_that_cannot_be_read_is_data(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    mapped = map_capture(str(junk), 2, "site/junk.pcap")
    assert mapped.error == "site/junk.pcap: not a pcap or pcapng file"
    assert mapped.shares == {}
    with pytest.raises(InputError, match=r"^site/junk\.pcap: not a pcap"):
        run_shares([str(junk)], Context(), 2, names=["site/junk.pcap"])


def test_a_remote_copy_is_removed_whatever_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    source = ROOT / "pcaps" / "04-fallback.pcap"
    url = f"memory://{source.name}"
    import fsspec

    with fsspec.open(url, "wb") as out:
        out.write(source.read_bytes())
    with opened_locally(url) as path:
        assert path.read_bytes() == source.read_bytes()
        assert path.parent == tmp_path
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), opened_locally(url):
        raise RuntimeError("the reader failed")
    assert list(tmp_path.iterdir()) == []
    missing = "memory://missing.pcap"
    with pytest.raises(InputError, match=f"^{missing}: cannot read: no such object$"):  # noqa: SIM117
        with opened_locally(missing):
            pass
    assert list(tmp_path.iterdir()) == []
    mapped = map_capture(url, 2)
    assert mapped.error is None and mapped.summary["path"] == url
    assert mapped.summary["sha256"]
