"""A TCP proxy on loopback that tests cut and restore, to take a server away at chosen moments.

    with TcpProxy(server.port) as proxy:
        ... proxy.uri ...
        proxy.cut()      # open connections are reset, new ones are reset on accept
        proxy.restore()  # connections pass again

While cut, the proxy still listens, so the port stays ours and a client sees a connection reset,
as when a server or a network path goes away. It is bounded: at most `max_connections` at
once (more are reset), and it stops itself after `lifetime` seconds, so a failed test never
leaves it running. Threads only; everything is closed by stop().
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

LOOPBACK = "127.0.0.1"


def _reset(connection: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a dead path looks to the client; the shutdown wakes
    a pump blocked in recv() on it (close alone would not)."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


class TcpProxy:
    def __init__(
        self, target_port: int, lifetime: float = 900.0, max_connections: int = 32
    ) -> None:
        self.target_port = target_port
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.passing = True
        self.pairs: set[_Pair] = set()
        self.stopped = threading.Event()
        self.reset_count = 0  # connections refused while cut (or over the bound)
        self.accepted = threading.Thread(target=self._accept, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> TcpProxy:
        self.accepted.start()
        return self

    def cut(self) -> None:
        """From now on nothing passes; open connections are reset."""
        with self.lock:
            self.passing = False
            pairs, self.pairs = self.pairs, set()
        for pair in pairs:
            pair.close()

    def restore(self) -> None:
        with self.lock:
            self.passing = True

    def stop(self) -> None:
        self.stopped.set()
        self.cut()
        self.accepted.join(5)
        self.listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        ends_at = time.monotonic() + self.lifetime
        while not self.stopped.is_set() and time.monotonic() < ends_at:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connect(client)
        self.stopped.set()
        self.cut()

    def _connect(self, client: socket.socket) -> None:
        with self.lock:
            admitted = self.passing and len(self.pairs) < self.max_connections
            if not admitted:
                self.reset_count += 1
        if not admitted:
            _reset(client)
            return
        try:
            upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        pair = _Pair(client, upstream)
        with self.lock:
            if not self.passing:  # cut while we connected
                pair.close()
                return
            self.pairs.add(pair)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        """One direction; the pair is closed when both directions have ended."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self.lock:
            pair.directions_left -= 1
            finished = pair.directions_left == 0 and pair in self.pairs
            if finished:
                self.pairs.discard(pair)
        if finished:
            pair.close()


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.directions_left = 2

    def close(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
