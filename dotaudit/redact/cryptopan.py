"""Crypto-PAn: keyed, prefix-preserving pseudonyms for IPv4 and IPv6 addresses.

The scheme of Xu, Fan, Ammar and Moon ("Prefix-Preserving IP Address Anonymization",
ICNP 2002). With a 32-byte key, the first 16 bytes key AES-128 and the last 16, encrypted
once under that key, form the pad. Bit ``i`` of the one-time pad for an address is the
top bit of AES over a block made of the address's first ``i`` bits followed by the pad's
bits from ``i`` on; the pseudonym is the address XOR that pad. So bit ``i`` of a pseudonym
depends only on bits ``0..i`` of the address: two addresses that share exactly a k-bit
prefix get pseudonyms that share exactly a k-bit prefix, and the map is a bijection on
each address family. IPv6 uses the same construction over 128 bits (as common
Crypto-PAn implementations do), so the IPv4 results match the reference distribution.

All ``bits`` input blocks of one address are known before any is encrypted, so one ECB
call encrypts them together; results are cached per address (an evidence pcap repeats
the same few addresses in every packet).
"""

from __future__ import annotations

import ipaddress

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
CACHE_SIZE = 65536
"""Addresses remembered per instance; the cache is emptied when full (bounded memory)."""

_ALL_ONES = (1 << 128) - 1

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class CryptoPAn:
    """Pseudonyms for one key. ``pseudonymise_packed`` is the fast path (4 or 16 bytes)."""

    __slots__ = ("_aes", "_cache", "_pad")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"Crypto-PAn needs a {KEY_BYTES}-byte key, got {len(key)}")
        # ECB is right here: every block is an independent PRF input, never a message.
        self._aes = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor()
        self._pad = int.from_bytes(self._aes.update(key[16:]), "big")
        self._cache: dict[bytes, bytes] = {}

    def _one_time_pad(self, value: int, bits: int) -> int:
        top = value << (128 - bits)
        pad = self._pad
        blocks = bytearray()
        for prefix in range(bits):
            keep = (_ALL_ONES << (128 - prefix)) & _ALL_ONES
            blocks += ((top & keep) | (pad & ~keep & _ALL_ONES)).to_bytes(16, "big")
        out = self._aes.update(bytes(blocks))
        result = 0
        for prefix in range(bits):
            result = (result << 1) | (out[16 * prefix] >> 7)
        return result

    def pseudonymise_int(self, value: int, bits: int) -> int:
        """The pseudonym of a ``bits``-bit address given as an integer (32 or 128 bits)."""
        if bits not in (32, 128) or not 0 <= value < (1 << bits):
            raise ValueError(f"not a {bits}-bit address: {value}")
        return value ^ self._one_time_pad(value, bits)

    def depseudonymise_int(self, value: int, bits: int) -> int:
        """The address whose pseudonym is ``value``: for the key holder only.

        Bit ``i`` of the address is bit ``i`` of the pseudonym XOR a function of the
        address's first ``i`` bits, so the address is recovered one bit at a time.
        """
        if bits not in (32, 128) or not 0 <= value < (1 << bits):
            raise ValueError(f"not a {bits}-bit address: {value}")
        original = 0
        for prefix in range(bits):
            keep = (_ALL_ONES << (128 - prefix)) & _ALL_ONES
            top = original << (128 - bits)
            block = (top & keep) | (self._pad & ~keep & _ALL_ONES)
            flip = self._aes.update(block.to_bytes(16, "big"))[0] >> 7
            bit = ((value >> (bits - 1 - prefix)) & 1) ^ flip
            original |= bit << (bits - 1 - prefix)
        return original

    def pseudonymise_packed(self, packed: bytes) -> bytes:
        """Pseudonym of an address in network byte order (4 or 16 bytes), cached."""
        cached = self._cache.get(packed)
        if cached is not None:
            return cached
        size = len(packed)
        if size not in (4, 16):
            raise ValueError(f"an address is 4 or 16 bytes, got {size}")
        bits = size * 8
        result = self.pseudonymise_int(int.from_bytes(packed, "big"), bits).to_bytes(size, "big")
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[bytes(packed)] = result
        return result

    def pseudonymise(self, address: IPAddress) -> IPAddress:
        return ipaddress.ip_address(self.pseudonymise_packed(address.packed))

    def depseudonymise(self, address: IPAddress) -> IPAddress:
        bits = address.max_prefixlen
        value = self.depseudonymise_int(int(address), bits)
        return ipaddress.ip_address(value.to_bytes(bits // 8, "big"))

    def pseudonymise_network(self, network: IPNetwork) -> IPNetwork:
        """The network holding every pseudonym of the addresses in ``network``.

        Prefix preservation makes this well defined: all addresses of a /k share the
        pseudonym's first k bits, so the pseudonym of the network address, cut to /k,
        is that network.
        """
        pseudonym = self.pseudonymise(network.network_address)
        return ipaddress.ip_network(f"{pseudonym}/{network.prefixlen}", strict=False)
