"""Traffic sessions for the benchmark capture. Each session is a generator of Ethernet
frames in wire order; the capture interleaves many of them.

Kinds (``KINDS``): TLS over TCP 443, QUIC over UDP 443, DNS over UDP and TCP 53, DNS over
TLS on 853, mDNS on 5353, and "other" (ARP, NTP, ICMP echo) that no DNS tool should report.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import struct
from collections.abc import Callable, Iterator

import dnsmsg
import quicinit
import tlsmsg
from wire import ACK, FIN, PSH, Link, Payload, Tcp, arp_request, fold, ones_sum

KINDS = ("tls", "quic", "video", "dns_udp", "dns_tcp", "dot", "mdns", "other")
DEFAULT_MIX = {
    "tls": 55,
    "quic": 24,
    "dns_udp": 9,
    "dns_tcp": 2,
    "dot": 6,
    "mdns": 2,
    "other": 2,
}
BULK_MIX = {
    "tls": 30,
    "quic": 30,
    "video": 35,
    "dns_udp": 2.5,
    "dns_tcp": 0.5,
    "dot": 1.5,
    "mdns": 0.3,
    "other": 0.2,
}
"""The realistic case: 95% of the packets are HTTPS, QUIC and video bulk (handshakes
included); DNS, DoT and the rest make up 5%."""
MIXES = {"default": DEFAULT_MIX, "bulk": BULK_MIX}
CONCURRENCY = {
    "tls": 40, "quic": 20, "video": 6, "dns_udp": 6, "dns_tcp": 2, "dot": 3, "mdns": 1, "other": 1,
}  # fmt: skip

Frames = Iterator[bytes]

_SYLLABLES = (
    "ka", "lo", "mi", "zen", "tor", "bel", "gra", "vix", "nu", "pe", "sta", "ro", "qua",
    "dex", "lin", "mar", "fo", "ti", "ser", "van", "cor", "alp", "bri", "lux", "neo", "opt",
    "pix", "rad", "sol", "tek", "uni", "web", "yol", "zap", "hub", "net",
)  # fmt: skip
_TLDS = ("com", "com", "com", "net", "org", "io", "de", "co.uk", "fr", "app", "dev")
_SUBS = ("www", "api", "cdn", "img", "static", "m", "login", "accounts", "edge", "assets")
_WELL_KNOWN = (
    "www.google.com", "fonts.gstatic.com", "www.youtube.com", "i.ytimg.com",
    "github.com", "api.github.com", "avatars.githubusercontent.com", "www.wikipedia.org",
    "upload.wikimedia.org", "www.bbc.co.uk", "connectivitycheck.gstatic.com",
    "clients4.google.com", "safebrowsing.googleapis.com", "update.googleapis.com",
    "www.cloudflare.com", "cdnjs.cloudflare.com", "outlook.office365.com",
    "login.microsoftonline.com", "graph.microsoft.com", "slack.com", "edgeapi.slack.com",
    "www.amazon.com", "m.media-amazon.com", "push.services.mozilla.com",
    "incoming.telemetry.mozilla.org", "ocsp.digicert.com", "time.cloudflare.com",
)  # fmt: skip
DOT_RESOLVERS = (
    ("dns.google", b"\x08\x08\x08\x08", "2001:4860:4860::8888"),
    ("dns.google", b"\x08\x08\x04\x04", "2001:4860:4860::8844"),
    ("cloudflare-dns.com", b"\x01\x01\x01\x01", "2606:4700:4700::1111"),
    ("one.one.one.one", b"\x01\x00\x00\x01", "2606:4700:4700::1001"),
    ("dns.quad9.net", b"\x09\x09\x09\x09", "2620:fe::fe"),
    ("dns.adguard-dns.com", b"\x5e\x8c\x0e\x0e", "2a10:50c0::ad1:ff"),
)
PLAIN_RESOLVERS = (
    (b"\xc0\xa8\x01\x01", "fd00:1::1"),
    (b"\x08\x08\x08\x08", "2001:4860:4860::8888"),
    (b"\x01\x01\x01\x01", "2606:4700:4700::1111"),
    (b"\x09\x09\x09\x09", "2620:fe::fe"),
)
MDNS_SERVICES = (
    "_googlecast._tcp.local",
    "_airplay._tcp.local",
    "_raop._tcp.local",
    "_spotify-connect._tcp.local",
    "_ipp._tcp.local",
    "_companion-link._tcp.local",
    "_hap._tcp.local",
)
GATEWAY_MAC = bytes.fromhex("001a2b3c4d5e")


def v6addr(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


NAMES = 6000
"""Names the clients visit: a long tail, so new (client, name) pairs keep appearing for
the whole of a 10M-packet capture, as do the reverse lookups of random LAN addresses."""
STEADY_NAMES = 100


class World:
    """Hosts, names and precomputed payload templates shared by all sessions.

    A ``steady`` world is a network that has shown everything it has within its first
    seconds: few names, and reverse lookups only of its own hosts. What dotaudit keeps of
    it must then stop growing, however long the capture."""

    def __init__(self, rng: random.Random, steady: bool = False) -> None:
        self.rng = rng
        self.steady = steady
        self.hosts = [
            (
                bytes([0x3C, 0x22, 0xFB]) + rng.randbytes(3),
                bytes([192, 168, 1, 10 + i]),
                bytes.fromhex("20010db8000100000000") + rng.randbytes(6),
            )
            for i in range(48)
        ]
        names = list(_WELL_KNOWN)
        while len(names) < (STEADY_NAMES if steady else NAMES):
            stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randrange(2, 4)))
            name = f"{stem}.{rng.choice(_TLDS)}"
            if rng.random() < 0.7:
                name = f"{rng.choice(_SUBS)}.{name}"
            names.append(name)
        self.names = names
        self.tls12_hosts = names[:8] + names[40:64]
        self.chains = tlsmsg.make_chains(self.tls12_hosts)
        self.bulk = {mss: self._bulk_templates(mss) for mss in (1448, 1428)}
        self.quic_bodies = [Payload(rng.randbytes(n)) for n in (1232, 1232, 1232, 1180, 880, 402)]
        self.quic_acks = [Payload(rng.randbytes(n)) for n in (24, 26, 30, 34)]
        self.port = 32768

    def name(self) -> str:
        # Skewed popularity: a few names dominate, with a long tail.
        return self.names[int(len(self.names) * self.rng.random() ** 3)]

    def host(self) -> tuple[bytes, bytes, bytes]:
        return self.hosts[int(len(self.hosts) * self.rng.random() ** 2)]

    def ephemeral_port(self) -> int:
        self.port = 32768 + (self.port - 32768 + self.rng.randrange(1, 97)) % 28000
        return self.port

    def server_addr(self, name: str, want_v6: bool) -> bytes:
        digest = hashlib.sha256(name.encode()).digest()
        if want_v6:
            prefix = (b"\x26\x06\x47\x00", b"\x2a\x00\x14\x50", b"\x26\x00\x90\x00")[digest[0] % 3]
            return prefix + digest[1:13]
        first = (104, 142, 151, 172, 185, 13, 52)[digest[0] % 7]
        return bytes([first, digest[1], digest[2], digest[3] | 1])

    def link(
        self, server4: bytes, server6: bytes | None, sport: int, dport: int
    ) -> tuple[Link, bool]:
        """A client-to-server link: a quarter over IPv6 when the server has an address,
        a tenth VLAN-tagged."""
        rng = self.rng
        mac, ip4, ip6 = self.host()
        use_v6 = server6 is not None and rng.random() < 0.25
        vlan = rng.choice((10, 20, 30)) if rng.random() < 0.1 else None
        link = Link(
            mac,
            GATEWAY_MAC,
            ip6 if use_v6 else ip4,
            server6 if use_v6 and server6 is not None else server4,
            sport,
            dport,
            vlan=vlan,
            ttl_b=rng.choice((52, 56, 57, 58, 116, 120)),
            ip_id=rng.randrange(65536),
            flow_label=rng.randrange(1 << 20),
        )
        return link, use_v6

    def _bulk_templates(self, mss: int) -> dict[str, list[list[Payload]]]:
        """Server response streams: whole TLS records exactly filling k segments, so a
        response can end on a record boundary while records straddle segments inside."""
        rng = self.rng
        out: dict[str, list[list[Payload]]] = {}
        for cls, segs in (("tiny", 1), ("small", 3), ("medium", 12), ("large", 48)):
            variants = []
            for _ in range(4):
                total = segs * mss
                stream = bytearray()
                while len(stream) < total:
                    left = total - len(stream)
                    frag = 16401 if cls == "large" else rng.randrange(80, 6000)
                    if left - (frag + 5) < 40:
                        frag = left - 5
                    stream += tlsmsg.app_data(rng, frag)
                variants.append([Payload(bytes(stream[i : i + mss])) for i in range(0, total, mss)])
            out[cls] = variants
        return out

    def response_segments(self, mss: int) -> list[Payload]:
        rng = self.rng
        r = rng.random()
        tpl = self.bulk[mss]
        if r < 0.35:
            return rng.choice(tpl["tiny"])
        if r < 0.65:
            return rng.choice(tpl["small"])
        if r < 0.9:
            return rng.choice(tpl["medium"]) * rng.randrange(1, 4)
        return rng.choice(tpl["large"]) * rng.randrange(1, 12)


def _tcp(world: World, link: Link) -> Tcp:
    rng = world.rng
    return Tcp(
        link, rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32)
    )


def _send(tcp: Tcp, from_a: bool, stream: bytes, mss: int) -> Frames:
    """``stream`` in MSS segments, the peer ACKing every second one."""
    n = len(stream)
    for k, off in enumerate(range(0, n, mss)):
        last = off + mss >= n
        yield tcp.seg(from_a, stream[off : off + mss], ACK | PSH if last else ACK)
        if k % 2 == 1 or last:
            yield tcp.seg(not from_a)


def _send_segments(tcp: Tcp, from_a: bool, segments: list[Payload]) -> Frames:
    last = len(segments) - 1
    for k, p in enumerate(segments):
        yield tcp.seg(from_a, p.data, ACK | PSH if k == last else ACK, p.psum)
        if k % 2 == 1 or k == last:
            yield tcp.seg(not from_a)


def _close(tcp: Tcp, rng: random.Random) -> Frames:
    client_first = rng.random() < 0.6
    yield tcp.seg(client_first, flags=FIN | ACK)
    yield tcp.seg(not client_first, flags=FIN | ACK)
    yield tcp.seg(client_first)


def _handshake(tcp: Tcp, v6: bool) -> Frames:
    mss = 1440 if v6 else 1460
    yield tcp.syn(mss)
    yield tcp.syn_ack(mss)
    yield tcp.seg(True)


def tls_session(world: World, mid_stream: bool = False) -> Frames:
    rng = world.rng
    profile = rng.choices(tlsmsg.PROFILES, weights=(55, 25, 15, 5))[0]
    tls12 = profile == "legacy" or rng.random() < 0.08
    if tls12:
        sni: str | None = rng.choice(world.tls12_hosts)
    else:
        sni = world.name() if rng.random() > 0.02 else None
    server = sni or "no-sni"
    link, v6 = world.link(
        world.server_addr(server, False),
        world.server_addr(server, True),
        world.ephemeral_port(),
        443,
    )
    tcp = _tcp(world, link)
    mss = 1428 if v6 else 1448
    if not mid_stream:
        yield from _handshake(tcp, v6)
        alpn = ("h2", "http/1.1") if profile != "legacy" else ("http/1.1",)
        kyber = profile == "chrome" and rng.random() < 0.3
        hello = tlsmsg.record(22, tlsmsg.client_hello(rng, sni, profile, alpn, kyber=kyber), 0x0301)
        yield from _send(tcp, True, hello, mss)
        if tls12:
            chain = world.chains[sni or world.tls12_hosts[0]]
            yield from _send(tcp, False, tlsmsg.server_flight_12(rng, chain, "http/1.1"), mss)
            yield from _send(tcp, True, tlsmsg.client_finish_12(rng), mss)
            yield from _send(tcp, False, tlsmsg.server_finish_12(rng), mss)
        else:
            yield from _send(tcp, False, tlsmsg.server_flight_13(rng), mss)
            finished = tlsmsg.record(20, b"\x01") + tlsmsg.app_data(rng, 53)
            yield from _send(tcp, True, finished, mss)
    for _ in range(rng.randrange(1, 6)):
        yield from _send(tcp, True, tlsmsg.app_data(rng, rng.randrange(40, 900)), mss)
        yield from _send_segments(tcp, False, world.response_segments(mss))
    if tls12 and rng.random() < 0.5:
        yield from _send(tcp, True, tlsmsg.encrypted_alert(rng), mss)
    yield from _close(tcp, rng)


def video_session(world: World, mid_stream: bool = False) -> Frames:
    """A video stream over TLS 1.3 on 443: one handshake, then minutes of 16 KB records
    in full-size segments, the client asking for the next chunk now and then."""
    rng = world.rng
    sni = rng.choice(("rr3---sn-4g5e6nzs.googlevideo.com", "video.twimg.com", "vod.example.net"))
    link, v6 = world.link(
        world.server_addr(sni, False), world.server_addr(sni, True), world.ephemeral_port(), 443
    )
    tcp = _tcp(world, link)
    mss = 1428 if v6 else 1448
    if not mid_stream:
        yield from _handshake(tcp, v6)
        hello = tlsmsg.record(22, tlsmsg.client_hello(rng, sni, "chrome", ("h2",)), 0x0301)
        yield from _send(tcp, True, hello, mss)
        yield from _send(tcp, False, tlsmsg.server_flight_13(rng), mss)
        finished = tlsmsg.record(20, b"\x01") + tlsmsg.app_data(rng, 53)
        yield from _send(tcp, True, finished, mss)
    large = world.bulk[mss]["large"]
    for _ in range(rng.randrange(20, 60)):
        yield from _send(tcp, True, tlsmsg.app_data(rng, rng.randrange(60, 200)), mss)
        yield from _send_segments(tcp, False, rng.choice(large) * rng.randrange(2, 6))
    yield from _close(tcp, rng)


def _short_header(
    link: Link, from_a: bool, dcid_sum: int, dcid: bytes, body: Payload, rand: Callable[[], float]
) -> bytes:
    # First byte and packet number are header-protected, so they look random on the wire.
    first, pn = 0x40 | int(rand() * 64), int(rand() * 256)
    head = bytes((first,)) + dcid + bytes((pn,))
    return link.udp(from_a, head + body.data, (first << 8) + pn + dcid_sum + body.psum)


def _dcid_sum(dcid: bytes) -> int:
    """Checksum contribution of an 8-byte CID sitting at odd offset 1 of the datagram."""
    return ones_sum(b"\x00" + dcid + b"\x00")


def quic_session(world: World, mid_stream: bool = False) -> Frames:
    rng = world.rng
    sni = world.name()
    link, _ = world.link(
        world.server_addr(sni, False), world.server_addr(sni, True), world.ephemeral_port(), 443
    )
    dcid, scid_c, scid_s = rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)
    sum_c, sum_s, rand = _dcid_sum(scid_c), _dcid_sum(scid_s), rng.random
    bodies, acks = world.quic_bodies, world.quic_acks
    if not mid_stream:
        profile = "chrome" if rng.random() < 0.8 else "firefox"
        hello = tlsmsg.client_hello(
            rng,
            sni,
            profile,
            ("h3",),
            quic_params=quicinit.transport_params(scid_c),
            kyber=profile == "chrome" and rng.random() < 0.3,
        )
        initials = quicinit.client_initials(dcid, scid_c, hello)
        for dgram in initials:
            yield link.udp(True, dgram)
        server_hello = tlsmsg.server_hello_13(rng, b"")
        blob = rng.randbytes(rng.randrange(700, 1000))
        yield link.udp(False, quicinit.server_initial(dcid, scid_c, scid_s, server_hello, blob))
        if rng.random() < 0.3:  # Chrome's ACK-only Initial: no CRYPTO frame, no SNI
            keys = quicinit.initial_keys(dcid, server=False)
            ack = quicinit.protect_long(
                0, scid_s, scid_c, len(initials), quicinit.ack_frame(0), keys, min_size=1250
            )
            yield link.udp(True, ack)
        yield _short_header(link, True, sum_s, scid_s, rng.choice(acks), rand)
    bodies, acks = world.quic_bodies, world.quic_acks
    for _ in range(rng.randrange(1, 5)):
        yield _short_header(link, True, sum_s, scid_s, rng.choice(bodies[4:]), rand)
        for k in range(rng.choice((1, 2, 3, 6, 12, 30, 80))):
            yield _short_header(link, False, sum_c, scid_c, bodies[int(rand() * 6)], rand)
            if k % 3 == 2:
                yield _short_header(link, True, sum_s, scid_s, acks[int(rand() * 4)], rand)


_QTYPES = (
    (dnsmsg.A,),
    (dnsmsg.A, dnsmsg.AAAA),
    (dnsmsg.A, dnsmsg.AAAA),
    (dnsmsg.A, dnsmsg.AAAA, dnsmsg.HTTPS),
    (dnsmsg.AAAA,),
    (dnsmsg.HTTPS,),
    (dnsmsg.TXT,),
    (dnsmsg.MX,),
)


def _dns_pairs(world: World) -> list[tuple[bytes, bytes]]:
    rng = world.rng
    qtypes: tuple[int, ...]
    if rng.random() < 0.05:
        if world.steady:
            _mac, ip4, _ip6 = world.host()
            ip = f"{ip4[3]}.{ip4[2]}.168.192.in-addr.arpa"
        else:
            ip = f"{rng.randrange(1, 255)}.{rng.randrange(256)}.168.192.in-addr.arpa"
        name, qtypes = ip, (dnsmsg.PTR,)
    else:
        name, qtypes = world.name(), rng.choice(_QTYPES)
    padded = rng.random() < 0.12
    edns = padded or rng.random() < 0.85
    nx = rng.random() < 0.05
    cname = "edge-" + name if rng.random() < 0.2 else None
    pairs = []
    for qtype in qtypes:
        msg_id = rng.randrange(65536)
        q = dnsmsg.query(msg_id, name, qtype, edns, 128 if padded else None)
        r = dnsmsg.response(
            rng, msg_id, name, qtype, edns, 468 if padded else None, nx,
            answers=rng.randrange(1, 4), cname=cname,
        )  # fmt: skip
        pairs.append((q, r))
    return pairs


def dns_udp_session(world: World) -> Frames:
    rng = world.rng
    server4, server6 = rng.choice(PLAIN_RESOLVERS)
    link, _ = world.link(server4, v6addr(server6), world.ephemeral_port(), 53)
    pairs = _dns_pairs(world)
    for q, _ in pairs:
        yield link.udp(True, q)
    for _, r in pairs:
        yield link.udp(False, r)


def dns_tcp_session(world: World) -> Frames:
    rng = world.rng
    server4, server6 = rng.choice(PLAIN_RESOLVERS)
    link, is_v6 = world.link(server4, v6addr(server6), world.ephemeral_port(), 53)
    tcp = _tcp(world, link)
    mss = 1428 if is_v6 else 1448
    yield from _handshake(tcp, is_v6)
    pairs = _dns_pairs(world)
    if rng.random() < 0.3:  # some answers are big (TC=1 fallback): pad the first to 2-3 KB
        q, r = pairs[0]
        pairs[0] = (q, _grow_opt(r, dnsmsg.padding_option(rng.randrange(1500, 3000))))
    queries = b"".join(struct.pack("!H", len(q)) + q for q, _ in pairs)
    yield from _send(tcp, True, queries, mss)
    answers = b"".join(struct.pack("!H", len(r)) + r for _, r in pairs)
    yield from _send(tcp, False, answers, mss)
    yield from _close(tcp, rng)


def _grow_opt(msg: bytes, option: bytes) -> bytes:
    """Append ``option`` to a message whose last record is an OPT record."""
    opt_start = msg.rfind(b"\x00\x00\x29")
    if opt_start < 0 or msg[11] != 1:
        return msg
    rdlen = struct.unpack("!H", msg[opt_start + 9 : opt_start + 11])[0]
    if opt_start + 11 + rdlen != len(msg):
        return msg
    head = msg[: opt_start + 9] + struct.pack("!H", rdlen + len(option))
    return head + msg[opt_start + 11 :] + option


def dot_session(world: World, mid_stream: bool = False) -> Frames:
    rng = world.rng
    sni_name, server4, server6 = rng.choice(DOT_RESOLVERS)
    sni = sni_name if rng.random() < 0.9 else None  # some stubs connect by address only
    link, is_v6 = world.link(server4, v6addr(server6), world.ephemeral_port(), 853)
    tcp = _tcp(world, link)
    mss = 1428 if is_v6 else 1448
    if not mid_stream:
        yield from _handshake(tcp, is_v6)
        profile = rng.choice(("openssl", "openssl", "chrome"))
        alpn = ("dot",) if rng.random() < 0.5 else ()
        hello = tlsmsg.record(22, tlsmsg.client_hello(rng, sni, profile, alpn), 0x0301)
        yield from _send(tcp, True, hello, mss)
        yield from _send(tcp, False, tlsmsg.server_flight_13(rng), mss)
        yield from _send(tcp, True, tlsmsg.record(20, b"\x01") + tlsmsg.app_data(rng, 53), mss)
    padded = rng.random() < 0.8
    for _ in range(rng.randrange(3, 40)):
        if padded:  # 128-byte padded query / 468-byte padded answer, +2 length, +17 AEAD
            q, r = 147, 487
        else:
            q, r = rng.randrange(45, 90), rng.randrange(60, 400)
        yield from _send(tcp, True, tlsmsg.app_data(rng, q), mss)
        yield from _send(tcp, False, tlsmsg.app_data(rng, r), mss)
    yield from _close(tcp, rng)


def mdns_session(world: World) -> Frames:
    rng = world.rng
    mac, ip4, ip6 = world.host()
    use_v6 = rng.random() < 0.3
    if use_v6:
        link = Link(mac, bytes.fromhex("3333000000fb"), bytes.fromhex("fe80000000000000") + ip6[8:],
                    v6addr("ff02::fb"), 5353, 5353, ttl_a=255)  # fmt: skip
    else:
        link = Link(mac, bytes.fromhex("01005e0000fb"), ip4, bytes([224, 0, 0, 251]), 5353, 5353,
                    ttl_a=255)  # fmt: skip
    service = rng.choice(MDNS_SERVICES)
    if rng.random() < 0.6:
        names = [(service, dnsmsg.PTR)]
        if rng.random() < 0.4:
            names.append((rng.choice(MDNS_SERVICES), dnsmsg.PTR))
        for _ in range(rng.randrange(1, 4)):
            yield link.udp(True, dnsmsg.mdns_query(names, unicast=rng.random() < 0.3))
    else:
        instance = f"Device-{rng.randrange(1000, 9999)}"
        host = f"host-{rng.randrange(100, 999)}.local"
        yield link.udp(True, dnsmsg.mdns_announce(rng, service, instance, host))


def other_session(world: World) -> Frames:
    rng = world.rng
    mac, ip4, _ = world.host()
    r = rng.random()
    if r < 0.4:
        yield arp_request(mac, ip4, bytes([192, 168, 1, rng.randrange(1, 254)]))
    elif r < 0.7:
        link = Link(mac, GATEWAY_MAC, ip4, bytes([162, 159, 200, 1 + rng.randrange(8)]), 123, 123)
        ntp = b"\x23" + bytes(39) + rng.randbytes(8)
        yield link.udp(True, ntp)
        yield link.udp(False, b"\x24\x03" + rng.randbytes(46))
    else:
        link = Link(mac, GATEWAY_MAC, ip4, bytes([8, 8, 8, 8]), 0, 0)
        ident = rng.randrange(65536)
        for seq in range(rng.randrange(1, 4)):
            for from_a, kind in ((True, 8), (False, 0)):
                body = struct.pack("!HH", ident, seq) + bytes(range(56))
                csum = ~fold(ones_sum(struct.pack("!BB", kind, 0) + body)) & 0xFFFF
                yield link.ip(from_a, 1, struct.pack("!BBH", kind, 0, csum) + body)


def new_session(kind: str, world: World, mid_stream: bool = False) -> Frames:
    if kind == "tls":
        return tls_session(world, mid_stream)
    if kind == "quic":
        return quic_session(world, mid_stream)
    if kind == "video":
        return video_session(world, mid_stream)
    if kind == "dns_udp":
        return dns_udp_session(world)
    if kind == "dns_tcp":
        return dns_tcp_session(world)
    if kind == "dot":
        return dot_session(world, mid_stream)
    if kind == "mdns":
        return mdns_session(world)
    return other_session(world)
