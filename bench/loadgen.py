"""The load generator: N threads, each with its own http.client connection, POST prepared bodies.

http.client keeps a connection alive when the server allows it and reconnects by itself when the server
closes it (gunicorn's sync worker closes after every response, as it would for the Logux server).
Bodies are built before the clock starts, so the client's own work per request is a POST and a read.
"""

from __future__ import annotations

import http.client
import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HEADERS = {"Content-Type": "application/json"}


class BadAnswer(RuntimeError):
    """A back end answered with something else than the workload expects."""


@dataclass
class CellResult:
    """One workload at one concurrency against one back end."""

    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    """One POST on `conn`; returns the status and the whole body."""
    conn.request("POST", path, body, HEADERS)
    response = conn.getresponse()
    return response.status, response.read()


def _run(
    port: int, path: str, bodies: Sequence[bytes], concurrency: int, accept: Callable[[int, bytes], bool]
) -> CellResult:
    counter = itertools.count()  # next() on it is atomic under the GIL: each body is sent once
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[slot]
        try:
            start.wait()
            while not failures:
                index = next(counter)
                if index >= len(bodies):
                    return
                began = time.perf_counter()
                try:
                    status, data = post(conn, path, bodies[index])
                except (OSError, http.client.HTTPException) as exc:
                    failures.append(f"request {index}: {type(exc).__name__}: {exc}")
                    return
                mine.append(time.perf_counter() - began)
                if not accept(status, data):
                    failures.append(f"request {index}: HTTP {status} {data[:300]!r}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise BadAnswer(failures[0])
    return CellResult(requests=len(bodies), seconds=seconds, latencies=[x for slot in latencies for x in slot])


def measure(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    warmup: int,
    concurrency: int,
    accept: Callable[[int, bytes], bool],
) -> CellResult:
    """Send the first `warmup` bodies untimed, then time the rest at `concurrency`."""
    if warmup:
        _run(port, path, bodies[:warmup], concurrency, accept)
    return _run(port, path, bodies[warmup:], concurrency, accept)
