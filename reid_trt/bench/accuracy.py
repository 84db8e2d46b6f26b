"""How far each subject is from the reference: parity on the bench crops, and retrieval accuracy
(mAP, Rank-1) on a labelled re-ID set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_trt.bench.results import Parity
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.metrics import RetrievalScores
from reid_trt.runtime.embedder import Embedder


def parity(reference: np.ndarray, candidate: np.ndarray, k: int) -> Parity:
    from reid_trt.core.metrics import cosine_rows, neighbour_agreement

    cos = cosine_rows(reference, candidate)
    return Parity(crops=len(cos), min_cosine=float(cos.min()), mean_cosine=float(cos.mean()),
                  topk_agreement=neighbour_agreement(reference, candidate, k)
                  if len(cos) > 1 else None, k=k)


@dataclass
class RetrievalProtocol:
    """A labelled set's queries and gallery, read once and scored for every subject."""

    query_crops: list[np.ndarray]
    query: list  # data.datasets.Sample
    gallery_crops: list[np.ndarray]
    gallery: list
    unreadable: int
    name: str


def load_protocol(kind: str, root: Path, max_queries: int | None) -> RetrievalProtocol:
    """Queries and gallery of a labelled set, read (data/retrieval.retrieval_split says which)."""
    from reid_trt.data.datasets import DatasetOptions, load_dataset, read_samples, stratified_sample
    from reid_trt.data.retrieval import retrieval_split

    # A plain folder has no query/gallery split: no use suggesting it here.
    dataset = load_dataset(root, kind, DatasetOptions(opt("dataset"), opt("dataset"), folder_ok=False))
    where = f"{opt('dataset')} {kind} {root}"
    split = retrieval_split(dataset, where)
    queries, gallery, name = split.query, split.gallery, split.protocol
    if max_queries is not None and max_queries < len(queries):
        queries = stratified_sample(queries, max_queries)
    q_crops, q_samples, q_bad = read_samples(queries)
    g_crops, g_samples, g_bad = read_samples(gallery)
    if not q_crops or not g_crops:
        raise ReidTrtError(f"{where}: no readable query or gallery images")
    return RetrievalProtocol(q_crops, q_samples, g_crops, g_samples, q_bad + g_bad, name)


def retrieval(embedder: Embedder, protocol: RetrievalProtocol) -> RetrievalScores:
    from reid_trt.core.metrics import evaluate

    p = protocol
    return evaluate(embedder.embed(p.query_crops), [s.pid for s in p.query],
                    [s.camid for s in p.query], embedder.embed(p.gallery_crops),
                    [s.pid for s in p.gallery], [s.camid for s in p.gallery])
