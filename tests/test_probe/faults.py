"""In-process misbehaving servers for what no real resolver does on purpose:

- ``tarpit``: accepts TCP and never speaks;
- ``garbage``: completes the TLS handshake, then answers any query with bytes that are
  not DNS;
- ``close-mid-handshake``: reads the ClientHello and closes.

Each listens on 127.0.0.1 on a free port and stops with the ``with`` block.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GARBAGE = b"\x00\x05hello"
"""A framed 5-byte "message": too short for a DNS header."""


def self_signed(directory: Path, name: str = "fault.test") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fault.pem", directory / "fault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FaultServer:
    def __init__(self, mode: str, directory: Path) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._tls: ssl.SSLContext | None = None
        if mode == "garbage":
            cert, key = self_signed(directory)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(cert, key)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._held:
            sock.close()
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.mode == "tarpit":
                self._held.append(conn)  # keep it open and silent
                return
            if self.mode == "close-mid-handshake":
                conn.recv(4096)  # the ClientHello
                conn.close()
                return
            assert self._tls is not None
            tls = self._tls.wrap_socket(conn, server_side=True)
            self._held.append(tls)
            while tls.recv(4096):
                tls.sendall(GARBAGE)
        except (OSError, ssl.SSLError):
            conn.close()
