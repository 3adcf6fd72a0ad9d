"""The precomputed-HMAC Initial key derivation against the plain RFC 9001 §5.2 recipe.

Oracle: HKDF-Extract as ``hmac.digest(salt, dcid)`` and :func:`hkdf_expand_label` (itself
checked on the RFC 9001 A.1 vectors in test_quic.py), for every version we decrypt.
"""

from __future__ import annotations

import hmac

import pytest

from dotaudit.dissect.quic import QUIC_VERSIONS, V2, _salt, hkdf_expand_label, initial_client_keys

DECRYPTABLE = [v for v in QUIC_VERSIONS if _salt(v) is not None]


@pytest.mark.parametrize("version", DECRYPTABLE)
@pytest.mark.parametrize("dcid", [b"", b"\x83\x94\xc8\xf0\x3e\x51\x57\x08", bytes(range(20))])
def test_keys_match_the_plain_recipe(version: int, dcid: bytes) -> None:
    salt = _salt(version)
    assert salt is not None
    prefix = b"quicv2 " if version == V2 else b"quic "
    secret = hkdf_expand_label(hmac.digest(salt, dcid, "sha256"), b"client in", 32)
    expected = (
        hkdf_expand_label(secret, prefix + b"key", 16),
        hkdf_expand_label(secret, prefix + b"iv", 12),
        hkdf_expand_label(secret, prefix + b"hp", 16),
    )
    assert initial_client_keys(version, dcid) == expected
    assert initial_client_keys(version, dcid) == expected  # cached salt state reused intact


def test_versions_get_different_keys() -> None:
    dcid = bytes(8)
    assert len({initial_client_keys(v, dcid) for v in DECRYPTABLE}) == 4  # v1, v2, 2 salts
