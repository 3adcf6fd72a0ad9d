"""An in-process DoH server for what no real one does on purpose: it trickles a valid
HTTP/2 frame one octet at a time, or answers the POST (over real HTTP/2, the h2 library)
with whatever body a test makes. TLS with ALPN h2 and the valid dns.test leaf of a
fresh test PKI, on 127.0.0.1, for one connection."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events

from tests.lab.pki import Pki

TRICKLE = b"\x00\x17\x70\x04\x00\x00\x00\x00\x00" + b"\x00\x02\x00\x00\x00\x00" * 1000
"""A well-formed 6000-octet SETTINGS frame (ENABLE_PUSH=0, 1000 times): sent one octet
every 0.1 s, it keeps a client reading for 10 minutes without a protocol error."""


class HostileDoh:
    """A TLS server on 127.0.0.1 (ALPN h2, the valid dns.test leaf of a fresh test PKI)
    for one connection. ``trickle`` sends ``TRICKLE`` after the handshake; ``http2``
    answers the POST over real HTTP/2 (the h2 library) with ``make_body(query)``."""

    def __init__(self, pki: Pki, mode: str, make_body: Callable[[bytes], bytes]) -> None:
        self.mode = mode
        self.make_body = make_body
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.leaf("valid").cert, pki.leaf("valid").key)
        self.context.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5.0)
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(5.0)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            raw, _ = self.listener.accept()
            with self.context.wrap_socket(raw, server_side=True) as tls:
                tls.settimeout(0.1)
                if self.mode == "trickle":
                    for octet in TRICKLE:
                        if self.stop.wait(0.1):
                            return
                        tls.sendall(bytes([octet]))
                else:
                    self._http2(tls)

    def _http2(self, tls: ssl.SSLSocket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        query, body, stream = b"", b"", 0
        while not self.stop.is_set():
            tls.sendall(conn.data_to_send())
            try:
                data = tls.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    query += event.data
                    conn.acknowledge_received_data(len(event.data), event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    stream, body = event.stream_id, self.make_body(query)
                    headers = [(":status", "200"), ("content-type", "application/dns-message")]
                    conn.send_headers(stream, headers)
            while stream and body and conn.local_flow_control_window(stream) > 0:
                size = min(len(body), conn.local_flow_control_window(stream),
                           conn.max_outbound_frame_size)  # fmt: skip
                conn.send_data(stream, body[:size], end_stream=size == len(body))
                body = body[size:]
