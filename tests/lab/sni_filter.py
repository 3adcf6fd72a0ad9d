"""An SNI filter as censoring middleboxes run it: a transparent TCP proxy that reads the
ClientHello, resets the connection when its SNI is on the block list, and otherwise
relays to the original destination.

nftables redirects the traffic here (``redirect to :PORT``); the original destination
comes from conntrack (``SO_ORIGINAL_DST``). The reset is a real RST (``SO_LINGER`` 0).
The SNI is read with a parser of its own (RFC 8446 §4.1.2, RFC 6066 §3), sharing nothing
with dotaudit's.

Run: ``python -m tests.lab.sni_filter --listen 198.51.100.1 --port 8443 --block dns.test``
"""

from __future__ import annotations

import argparse
import selectors
import socket
import struct
import sys
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
MAX_HELLO = 16 * 1024 + 5
IO_TIMEOUT = 5.0


def sni_of(record: bytes) -> str | None:
    """The host_name of a TLS record holding a whole ClientHello; None without one."""
    try:
        if record[0] != 22 or record[5] != 1:  # handshake record, ClientHello
            return None
        pos = 5 + 4 + 2 + 32  # handshake header, legacy_version, random
        pos += 1 + record[pos]  # session id
        (suites,) = struct.unpack_from("!H", record, pos)
        pos += 2 + suites
        pos += 1 + record[pos]  # compression methods
        (ext_total,) = struct.unpack_from("!H", record, pos)
        pos += 2
        end = pos + ext_total
        while pos + 4 <= end:
            ext_type, ext_len = struct.unpack_from("!HH", record, pos)
            pos += 4
            if ext_type == 0:  # server_name
                name_len = struct.unpack_from("!H", record, pos + 3)[0]
                return record[pos + 5 : pos + 5 + name_len].decode("ascii", "replace").lower()
            pos += ext_len
    except (IndexError, struct.error):
        return None
    return None


def _read_hello(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < 5 or len(data) < 5 + struct.unpack_from("!H", data, 3)[0]:
        chunk = conn.recv(MAX_HELLO - len(data))
        if not chunk:
            break
        data += chunk
        if len(data) >= MAX_HELLO:
            break
    return data


def _relay(a: socket.socket, b: socket.socket) -> None:
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            events = sel.select(30.0)
            if not events:
                return
            for key, _ in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()


def handle(conn: socket.socket, blocked: frozenset[str]) -> None:
    with conn:
        conn.settimeout(IO_TIMEOUT)
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port = struct.unpack_from("!H", raw, 2)[0]
        address = socket.inet_ntoa(raw[4:8])
        try:
            hello = _read_hello(conn)
        except OSError:
            return
        sni = sni_of(hello)
        if sni in blocked:
            print(f"RESET {address}:{port} sni={sni}", flush=True)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        print(f"RELAY {address}:{port} sni={sni}", flush=True)
        try:
            upstream = socket.create_connection((address, port), IO_TIMEOUT)
        except OSError:
            return
        with upstream:
            upstream.sendall(hello)
            conn.settimeout(None)
            _relay(conn, upstream)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--block", action="append", default=[])
    args = parser.parse_args()
    blocked = frozenset(b.lower() for b in args.block)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.listen, args.port))
    server.listen(64)
    print(f"READY {args.listen} {args.port}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn, blocked), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
