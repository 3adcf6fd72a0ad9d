"""Crypto-PAn: the reference distribution's vectors, and the properties the report relies on."""

from __future__ import annotations

import ipaddress
import random

import pytest

from dotaudit.redact.cryptopan import CACHE_SIZE, CryptoPAn

# Oracle: the sample key and the sample_trace_raw/sample_trace_sanitized pairs shipped with
# the Crypto-PAn reference implementation (Xu, Fan, Ammar, Moon; Georgia Tech), widely
# reproduced by other implementations' test suites.
REFERENCE_KEY = bytes(
    [21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16,
     216, 152, 143, 131, 121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2]
)  # fmt: skip
REFERENCE_IPV4 = [
    ("128.11.68.132", "135.242.180.132"),
    ("129.118.74.4", "134.136.186.123"),
    ("130.132.252.244", "133.68.164.234"),
    ("141.223.7.43", "141.167.8.160"),
    ("141.233.145.108", "141.129.237.235"),
    ("152.163.225.39", "151.140.114.167"),
    ("156.29.3.236", "147.225.12.42"),
    ("165.247.96.84", "162.9.99.234"),
    ("166.107.77.190", "160.132.178.185"),
    ("192.102.249.13", "252.138.62.131"),
    ("192.215.32.125", "252.43.47.189"),
    ("192.233.80.103", "252.25.108.8"),
    ("192.41.57.43", "252.222.221.184"),
    ("193.150.244.223", "253.169.52.216"),
    ("195.205.63.100", "255.186.223.5"),
    ("198.200.171.101", "249.199.68.213"),
    ("198.26.132.101", "249.36.123.202"),
    ("198.36.213.5", "249.7.21.132"),
    ("198.51.77.238", "249.18.186.254"),
    ("199.217.79.101", "248.38.184.213"),
    ("24.0.250.221", "100.15.198.226"),
    ("4.3.88.225", "124.60.155.63"),
    ("63.14.55.111", "95.9.215.7"),
    ("64.14.118.196", "0.255.183.58"),
    ("10.185.25.118", "117.161.29.118"),
]
# The same construction over 128 bits, as the Go cryptopan package (and others built on
# it) computes it: agreeing with it means IPv6 pseudonyms interoperate too.
INTEROP_IPV6 = [
    ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
    ("::2", "78ff:f001:9fc0:20df:8380:b1f1:704:ef"),
    ("::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838"),
    ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
    ("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"),
]


@pytest.mark.parametrize(("original", "expected"), REFERENCE_IPV4 + INTEROP_IPV6)
def test_published_vectors(original: str, expected: str) -> None:
    pan = CryptoPAn(REFERENCE_KEY)
    assert str(pan.pseudonymise(ipaddress.ip_address(original))) == expected


@pytest.mark.parametrize(("original", "expected"), REFERENCE_IPV4[:5] + INTEROP_IPV6[:2])
def test_inverse_recovers_the_address(original: str, expected: str) -> None:
    pan = CryptoPAn(REFERENCE_KEY)
    assert str(pan.depseudonymise(ipaddress.ip_address(expected))) == original


def common_prefix(a: int, b: int, bits: int) -> int:
    diff = a ^ b
    return bits - diff.bit_length()


@pytest.mark.parametrize("bits", [32, 128])
def test_prefix_preservation_over_random_pairs(bits: int) -> None:
    pan = CryptoPAn(bytes(range(32)))
    rng = random.Random(17)
    for _ in range(400 if bits == 32 else 150):
        a = rng.getrandbits(bits)
        shared = rng.randrange(bits + 1)
        # b shares exactly `shared` leading bits with a (all of them when shared == bits).
        if shared == bits:
            b = a
        else:
            flip = 1 << (bits - 1 - shared)
            low = rng.getrandbits(bits - 1 - shared) if shared < bits - 1 else 0
            b = ((a ^ flip) >> (bits - 1 - shared) << (bits - 1 - shared)) | low
        assert common_prefix(a, b, bits) == shared
        pa, pb = pan.pseudonymise_int(a, bits), pan.pseudonymise_int(b, bits)
        assert common_prefix(pa, pb, bits) == shared


def test_bijective_on_a_whole_slash_16_and_on_samples() -> None:
    pan = CryptoPAn(bytes(range(32)))
    base = int(ipaddress.IPv4Address("10.20.0.0"))
    images = {pan.pseudonymise_int(base + i, 32) for i in range(1 << 16)}
    assert len(images) == 1 << 16
    # Prefix preservation maps the /16 onto exactly one /16.
    assert len({image >> 16 for image in images}) == 1
    rng = random.Random(3)
    sample = [rng.getrandbits(128) for _ in range(300)]
    pseudonyms = [pan.pseudonymise_int(v, 128) for v in sample]
    assert len(set(pseudonyms)) == len(set(sample))
    assert [pan.depseudonymise_int(p, 128) for p in pseudonyms[:20]] == sample[:20]


def test_stable_for_one_key_and_different_across_keys() -> None:
    addresses = [ipaddress.ip_address(a) for a in ("192.0.2.7", "198.51.100.23", "2001:db8:1::22")]
    first = [CryptoPAn(bytes(range(32))).pseudonymise(a) for a in addresses]
    again = [CryptoPAn(bytes(range(32))).pseudonymise(a) for a in addresses]
    other_key = bytes(range(1, 33))
    other = [CryptoPAn(other_key).pseudonymise(a) for a in addresses]
    assert first == again
    assert all(x != y for x, y in zip(first, other, strict=True))
    assert all(p != a for p, a in zip(first, addresses, strict=True))


def test_network_pseudonym_holds_the_pseudonyms_of_its_addresses() -> None:
    pan = CryptoPAn(bytes(range(32)))
    network = ipaddress.ip_network("198.51.100.0/24")
    image = pan.pseudonymise_network(network)
    assert image.prefixlen == 24
    for host in ("198.51.100.1", "198.51.100.23", "198.51.100.254"):
        assert pan.pseudonymise(ipaddress.ip_address(host)) in image
    v6 = pan.pseudonymise_network(ipaddress.ip_network("2001:db8:1::/48"))
    assert pan.pseudonymise(ipaddress.ip_address("2001:db8:1::22")) in v6


def test_cache_is_bounded_and_does_not_change_results() -> None:
    pan = CryptoPAn(bytes(range(32)))
    first = pan.pseudonymise_packed(b"\xc0\x00\x02\x07")
    for i in range(CACHE_SIZE + 5):
        pan.pseudonymise_packed(i.to_bytes(4, "big"))
    assert len(pan._cache) <= CACHE_SIZE
    assert pan.pseudonymise_packed(b"\xc0\x00\x02\x07") == first


def test_rejects_bad_keys_and_values() -> None:
    with pytest.raises(ValueError):
        CryptoPAn(bytes(31))
    pan = CryptoPAn(bytes(32))
    with pytest.raises(ValueError):
        pan.pseudonymise_packed(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        pan.pseudonymise_int(1 << 32, 32)
