"""Servers that do not answer, on 127.0.0.1: a hung MLflow server (``SilentServer``, which
accepts connections and never answers) and a dead one (``closed_port_url``).

Used by the tests and by ``scripts/drill_errors.py``; a SilentServer stops itself after
``lifetime_s`` even if nobody closes it.
"""
from __future__ import annotations

import socket
import threading
import time


def closed_port_url() -> str:
    """The URL of a port nothing listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{s.getsockname()[1]}'  # closed again on return


class SilentServer:
    """Accepts TCP connections, never reads or answers them; stops after ``lifetime_s``.

    Args:
        lifetime_s (float): Seconds after which it closes everything. Defaults to 600.
    """

    def __init__(self, lifetime_s: float = 600.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.deadline = time.monotonic() + lifetime_s
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                self.held.append(self.sock.accept()[0])  # held open, never answered
            except OSError:
                continue
        for conn in self.held:
            conn.close()
        self.sock.close()

    def close(self) -> None:
        self.deadline = 0
        self.thread.join()

    def __enter__(self) -> 'SilentServer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
