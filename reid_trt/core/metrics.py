"""Embedding agreement and re-ID retrieval metrics (the standard Market-1501 protocol),
vectorised with NumPy. Shared by export verification, calibration and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_trt.core.errors import ReidTrtError

JUNK_PID = -1  # Market-1501 / DukeMTMC "junk" images: ignored in the gallery


@dataclass(frozen=True)
class RetrievalScores:
    cmc: dict[int, float]  # rank k -> fraction of queries whose first true match is in the top k
    mAP: float
    queries: int  # queries with at least one valid true match (the others are not scored)

    @property
    def rank1(self) -> float:
        return self.cmc[1]

    def to_dict(self) -> dict:
        return {"mAP": self.mAP, **{f"rank{k}": v for k, v in self.cmc.items()},
                "queries": self.queries}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (0 for a zero row)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    denom = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return (a * b).sum(axis=1) / denom


def distance_matrix(query: np.ndarray, gallery: np.ndarray, metric: str = "cosine") -> np.ndarray:
    q, g = query.astype(np.float64), gallery.astype(np.float64)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - q @ g.T
    if metric == "euclidean":
        d = (q ** 2).sum(1)[:, None] + (g ** 2).sum(1)[None, :] - 2.0 * q @ g.T
        return np.sqrt(np.maximum(d, 0.0))
    raise ReidTrtError(f"metric '{metric}': choose cosine or euclidean")


def evaluate(query: np.ndarray, query_pids, query_cams, gallery: np.ndarray, gallery_pids,
             gallery_cams, metric: str = "cosine", ranks=(1, 5, 10)) -> RetrievalScores:
    """CMC and mAP. Gallery entries of the query's identity seen by the query's camera are
    removed for that query, and junk (pid -1) entries for every query."""
    qp, qc = np.asarray(query_pids), np.asarray(query_cams)
    gp, gc = np.asarray(gallery_pids), np.asarray(gallery_cams)
    order = np.argsort(distance_matrix(query, gallery, metric), axis=1, kind="stable")
    same_pid = gp[order] == qp[:, None]
    keep = ~(same_pid & (gc[order] == qc[:, None])) & (gp[order] != JUNK_PID)
    hits = same_pid & keep
    valid = hits.any(axis=1)
    if not valid.any():
        raise ReidTrtError("no query has a true match in the gallery from another camera")
    hits, keep = hits[valid], keep[valid]
    rank_of = np.cumsum(keep, axis=1) - 1  # position among the kept gallery entries
    first = np.where(hits, rank_of, np.iinfo(np.int64).max).min(axis=1)
    cmc = {k: float((first < k).mean()) for k in ranks}
    hit_count = np.cumsum(hits, axis=1)
    # Precision at each true match (rank_of is -1 before the first kept entry: never a hit).
    precision = np.divide(hit_count, rank_of + 1, out=np.zeros(hits.shape), where=hits)
    ap = precision.sum(axis=1) / hits.sum(axis=1)
    return RetrievalScores(cmc, float(ap.mean()), int(valid.sum()))


def neighbour_agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> float:
    """Mean overlap of each item's top-k nearest neighbours (itself excluded) under two embeddings:
    retrieval agreement without labels (1.0: the same neighbour lists)."""
    n = len(reference)
    k = min(k, n - 1)
    if k < 1:
        raise ReidTrtError("neighbour agreement needs at least 2 embeddings")

    def top_k(v: np.ndarray) -> np.ndarray:
        d = distance_matrix(v, v)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :k]

    a, b = top_k(reference), top_k(candidate)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))
