"""Concurrent clients: what a served model (or an in-process Embedder shared by threads) gives
when many trackers call it at once, each waiting for its own answer."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from reid_trt.bench.results import Load


def concurrent_load(embedder, crops: list[np.ndarray], clients: int, requests: int,
                    batch: int) -> Load:
    """`clients` threads each send `requests` calls of `batch` crops, back to back; returns the
    latency of a call (p50, p99) and the throughput of all of them together."""

    def client(k: int) -> list[float]:
        samples = []
        for r in range(requests):
            first = (k * requests + r) * batch
            chunk = [crops[(first + i) % len(crops)] for i in range(batch)]
            start = time.perf_counter()
            embedder.embed(chunk)
            samples.append(time.perf_counter() - start)
        return samples

    embedder.embed(crops[:batch])  # warm: sessions, connections, the server's first batch
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        samples = [s for per_client in pool.map(client, range(clients)) for s in per_client]
    wall = time.perf_counter() - start
    ms = np.asarray(samples) * 1000.0
    p50, p99 = np.percentile(ms, [50, 99])
    return Load(clients=clients, requests=len(samples), crops_per_request=batch,
                p50_ms=float(p50), p99_ms=float(p99), seconds=wall,
                requests_per_s=len(samples) / wall, throughput=len(samples) * batch / wall)
