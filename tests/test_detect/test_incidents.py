"""Findings of one incident link to each other (detect/incidents.py); others do not."""

from __future__ import annotations

import pytest

from dotaudit.detect.incidents import link_related
from dotaudit.model.findings import Finding, make_finding

C, D = "10.0.0.2", "10.0.0.3"
DOT, PLAIN = "9.9.9.9", "10.0.0.53"


def finding(fid: str, client: str | None, server: str | None, **evidence: object) -> Finding:
    return make_finding(
        fid, dedup_key=f"{client}|{server}", client=client, server=server, evidence=evidence
    )


def related(findings: list[Finding]) -> dict[str, set[str]]:
    return {f.dedup_key: set(f.related) for f in link_related(findings)}


def test_a_fallback_links_its_failed_attempt_and_its_plaintext() -> None:
    fallback = finding("DA-FALLBACK-001", C, DOT, plaintext_servers=[PLAIN])
    failed = finding("DA-DOT-001", C, DOT)
    leak = finding("DA-LEAK-001", C, PLAIN)
    unrelated = [
        finding("DA-DOT-001", C, "1.1.1.1"),  # another DoT server
        finding("DA-LEAK-001", D, PLAIN),  # another client
        finding("DA-LEAK-001", C, "8.8.8.8"),  # plaintext to a server the fallback did not use
    ]
    links = related([fallback, failed, leak, *unrelated])
    assert links[fallback.dedup_key] == {failed.dedup_key, leak.dedup_key}
    assert links[failed.dedup_key] == {fallback.dedup_key}
    assert links[leak.dedup_key] == {fallback.dedup_key}
    assert all(links[f.dedup_key] == set() for f in unrelated)


def test_without_plaintext_servers_the_fallback_server_counts() -> None:
    fallback = finding("DA-FALLBACK-001", C, DOT)
    leak = finding("DA-LEAK-002", C, DOT)
    assert related([fallback, leak])[leak.dedup_key] == {fallback.dedup_key}


@pytest.mark.parametrize("named", [[], "10.0.0.53", {"10.0.0.53": 1}], ids=["empty", "str", "dict"])
def test_plaintext_servers_that_are_no_list_of_servers_count_as_none(named: object) -> None:
    """An empty list or a value of another type (a report read back may hold anything)
    is no list of servers: the fallback's own server counts, as when the key is absent."""
    fallback = finding("DA-FALLBACK-001", C, DOT, plaintext_servers=named)
    by_own_server = finding("DA-LEAK-002", C, DOT)
    by_named = finding("DA-LEAK-001", C, PLAIN)
    links = related([fallback, by_own_server, by_named])
    assert links[by_own_server.dedup_key] == {fallback.dedup_key}
    assert links[by_named.dedup_key] == set()


def test_findings_about_the_same_plaintext_link() -> None:
    leak = finding("DA-LEAK-001", C, PLAIN)
    padded = finding("DA-LEAK-004", C, PLAIN)
    ecs = finding("DA-LEAK-006", C, PLAIN)
    split = finding("DA-LEAK-007", C, f"{PLAIN}, 8.8.8.8")  # a split leak names several
    links = related([leak, padded, ecs, split])
    assert links[leak.dedup_key] == {padded.dedup_key, ecs.dedup_key, split.dedup_key}
    assert links[ecs.dedup_key] == {leak.dedup_key}  # not to its siblings: they need no link


def test_findings_about_the_same_dot_sessions_link_but_a_failure_does_not() -> None:
    padding = finding("DA-PAD-001", C, DOT)
    tls = finding("DA-DOT-003", C, DOT)
    working = finding("DA-DOT-006", C, DOT)
    failed = finding("DA-DOT-001", C, DOT)
    links = related([padding, tls, working, failed])
    assert links[padding.dedup_key] == {tls.dedup_key, working.dedup_key}
    assert links[failed.dedup_key] == set()


def test_order_is_kept_and_findings_without_a_client_are_left_alone() -> None:
    probe = finding("DA-PROBE-001", None, DOT)
    leak = finding("DA-LEAK-001", C, PLAIN)
    out = link_related([probe, leak])
    assert [f.dedup_key for f in out] == [probe.dedup_key, leak.dedup_key]
    assert out[0].related == ()


def test_findings_that_name_no_server_do_not_link() -> None:
    """Without a server there is no incident to share: same client is not enough."""
    padded = make_finding("DA-LEAK-004", dedup_key="padded", client=C, server=None)
    leak = make_finding("DA-LEAK-001", dedup_key="leak", client=C, server=None)
    links = related([padded, leak])
    assert links == {padded.dedup_key: set(), leak.dedup_key: set()}


def test_a_finding_without_a_client_before_the_others_does_not_stop_their_linking() -> None:
    probe = finding("DA-PROBE-001", None, DOT)
    fallback = finding("DA-FALLBACK-001", C, DOT, plaintext_servers=[PLAIN])
    failed = finding("DA-DOT-001", C, DOT)
    leak = finding("DA-LEAK-001", C, PLAIN)
    links = related([probe, fallback, failed, leak])
    assert links[fallback.dedup_key] == {failed.dedup_key, leak.dedup_key}
    assert links[probe.dedup_key] == set()


def test_a_plaintext_server_no_other_finding_names_links_nothing_and_the_rest_still_links() -> None:
    fallback = finding("DA-FALLBACK-001", C, DOT, plaintext_servers=["10.0.0.99"])
    failed = finding("DA-DOT-001", C, DOT)
    links = related([fallback, failed])
    assert links[fallback.dedup_key] == {failed.dedup_key}
    assert links[failed.dedup_key] == {fallback.dedup_key}


def test_a_fallback_links_the_padded_plaintext_it_went_to() -> None:
    """Plaintext with EDNS padding (DA-LEAK-004) to a server the fallback used is part of
    the same incident, as unpadded plaintext is."""
    fallback = finding("DA-FALLBACK-001", C, DOT, plaintext_servers=[PLAIN])
    padded = finding("DA-LEAK-004", C, PLAIN)
    elsewhere = finding("DA-LEAK-004", C, "8.8.8.8")
    links = related([fallback, padded, elsewhere])
    assert links[fallback.dedup_key] == {padded.dedup_key}
    assert links[padded.dedup_key] == {fallback.dedup_key}
    assert links[elsewhere.dedup_key] == set()
