"""A TCP proxy on loopback that a test can cut and restore: an outage of one stack's PostgreSQL or Redis
without touching the shared server.

While cut, every open connection is closed and every new one is accepted and closed at once, as a
server that is down or restarting would look to its clients.

A cut can also be armed to land at one point of a client's conversation (`blip_at`): when a client
sends a packet containing a pattern (say `COMMIT`, after a given statement in the same transaction),
the proxy cuts either before the packet reaches the server or just after it, dropping the server's
answer, so the client cannot tell whether its transaction committed. It restores by itself after the
given seconds.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_HISTORY = 64 * 1024  # what a connection sent since its last COMMIT/ROLLBACK, for `after`
# psycopg prepares a statement it has run five times, then sends only its name: a Parse message names it
# (`_pg3_N` then the SQL), a Bind message runs it by name. Names are mapped back to their SQL per connection.
_STATEMENT = re.compile(rb"(_pg3_\d+)\x00([^\x00]*)")
_SQL = (b"SELECT", b"UPDATE", b"INSERT", b"DELETE", b"WITH")


@dataclass
class Blip:
    """An armed (then fired) short outage."""

    name: str
    pattern: bytes
    after: bytes | None
    forward: bool
    seconds: float
    fired_at: float | None = None
    restored_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    muted: bool = False  # the server's answers are dropped (the cut is on its way)
    history: bytearray = field(default_factory=bytearray)
    prepared: dict[bytes, bytes] = field(default_factory=dict)

    def read(self, data: bytes) -> bytes:
        """The packet with the SQL of any prepared statement it runs by name."""
        texts = [data]
        for name, rest in _STATEMENT.findall(data):
            if rest.lstrip().upper().startswith(_SQL):
                self.prepared[name] = rest
            elif name in self.prepared:
                texts.append(self.prepared[name])
        return b" ".join(texts)


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True)
        self._armed: Blip | None = None
        self.blips: list[Blip] = []
        self.refused = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def url_for(self, url: str) -> str:
        """`url` (postgresql+psycopg://... or redis://...) with this proxy's port in place of the target's."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            conns, self._open = self._open, set()
        for conn in conns:
            _close(conn)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def blip(self, seconds: float, name: str = "timed") -> Blip:
        """Cut now, and restore after `seconds` without the caller waiting."""
        blip = Blip(name, b"", None, False, seconds)
        with self._lock:
            self.blips.append(blip)
        self._fire(blip)
        return blip

    def blip_at(self, pattern: bytes, *, seconds: float, after: bytes | None = None, forward: bool = False,
                name: str = "") -> Blip:
        """Arm a cut of `seconds` for the next client packet containing `pattern` (in a transaction that
        already sent `after`, if given): before the packet reaches the server, or with `forward` just
        after, its answer lost. Returns the blip; `blip.done` is set once the proxy is restored."""
        blip = Blip(name or pattern.decode(errors="replace"), pattern, after, forward, seconds)
        with self._lock:
            assert self._armed is None, "one armed blip at a time"
            self._armed = blip
            self.blips.append(blip)
        return blip

    def stop(self) -> None:
        self._stopping.set()
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _fire(self, blip: Blip) -> None:
        blip.fired_at = time.monotonic()
        self.cut()

        def restore_later() -> None:
            time.sleep(blip.seconds)
            self.restore()
            blip.restored_at = time.monotonic()
            blip.done.set()

        threading.Thread(target=restore_later, name=f"proxy-{self.port}-restore", daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._cut:
                    _close(client)
                    _close(upstream)
                    continue
                self._open.update((client, upstream))
            link = _Link(client, upstream)
            threading.Thread(target=self._pump_out, args=(link,), daemon=True).start()
            threading.Thread(target=self._pump_back, args=(link,), daemon=True).start()

    def _trigger(self, link: _Link, data: bytes) -> Blip | None:
        """The armed blip, disarmed, if this packet fires it."""
        with self._lock:
            blip = self._armed
            if blip is None or self._cut or blip.pattern not in data:
                return None
            if blip.after is not None and blip.after not in link.history:
                return None
            self._armed = None
            link.muted = True
            return blip

    def _pump_out(self, link: _Link) -> None:
        """Client to server, watching for an armed blip."""
        try:
            while True:
                data = link.client.recv(65536)
                if not data:
                    break
                text = link.read(data)
                blip = self._trigger(link, text)
                if blip is not None:
                    if blip.forward:
                        link.upstream.sendall(data)
                        time.sleep(0.05)  # the server acts on it; its answer is dropped
                    self._fire(blip)
                    break
                link.upstream.sendall(data)
                if b"COMMIT" in data or b"ROLLBACK" in data:
                    link.history.clear()
                else:
                    link.history += text
                    del link.history[:-_HISTORY]
        except OSError:
            pass
        finally:
            self._close_link(link)

    def _pump_back(self, link: _Link) -> None:
        """Server to client, unless the link is muted."""
        try:
            while True:
                data = link.upstream.recv(65536)
                if not data or link.muted:
                    break
                link.client.sendall(data)
        except OSError:
            pass
        finally:
            self._close_link(link)

    def _close_link(self, link: _Link) -> None:
        with self._lock:
            self._open.discard(link.client)
            self._open.discard(link.upstream)
        _close(link.client)
        _close(link.upstream)


def _close(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
