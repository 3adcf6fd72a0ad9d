"""A TLS server on 127.0.0.1 that presents the certificates a test made.

The cert.* checks read only the TLS handshake, so OpenSSL's own server (Python's ssl
module) stands in for the lab's resolvers here: it needs no lab, so these tests run in
every non-lab session and in mutation runs, and any certificate can be served, also
the weak ones that Unbound refuses to load. Each listens on a free port and stops with
the ``with`` block.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from tests.certgen import Issued, write_chain


class CertServer:
    def __init__(self, directory: Path, leaf: Issued, *chain: Issued, weak: bool = False) -> None:
        cert_path, key_path = write_chain(directory, leaf, *chain)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if weak:  # serve keys and signatures that OpenSSL's default level refuses
            self._tls.set_ciphers("ALL:@SECLEVEL=0")
        self._tls.load_cert_chain(cert_path, key_path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CertServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(3.0)
        try:
            with self._tls.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(4096):
                    pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()
