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


# How queries meet the gallery, as the report names it. Scored as Market-1501 is: gallery
# images of the query's identity from the query's own camera are ignored (re-ID is across
# cameras), junk (pid -1) is ignored, distractors (pid 0) stay as negatives.
SPLIT_PROTOCOL = "the set's query vs its gallery, across cameras"
FIRST_CAMERA_PROTOCOL = "camera {camera}'s crops query the other cameras' (CUHK03's camera pairs)"


@dataclass
class RetrievalProtocol:
    """A labelled set's queries and gallery, read once and scored for every subject."""

    query_crops: list[np.ndarray]
    query: list  # data.datasets.Sample
    gallery_crops: list[np.ndarray]
    gallery: list
    unreadable: int
    name: str = SPLIT_PROTOCOL


def load_protocol(kind: str, root: Path, max_queries: int | None) -> RetrievalProtocol:
    """Queries and gallery of a labelled set: its own split (query/ and bounding_box_test/, or
    MSMT17's lists; no training split needed), or for one folder of Market-named crops from two
    or more cameras (such as the shared CUHK03 set) the first camera's crops against the other
    cameras'."""
    from reid_trt.data.datasets import (
        DatasetOptions,
        load_dataset,
        read_samples,
        stratified_sample,
    )

    # A plain folder has no query/gallery split: no use suggesting it here.
    dataset = load_dataset(root, kind, DatasetOptions(opt("dataset"), opt("dataset"), folder_ok=False))
    where = f"{opt('dataset')} {kind} {root}"
    if dataset.query or dataset.gallery:
        if not (dataset.query and dataset.gallery):
            missing = "query" if not dataset.query else "gallery (bounding_box_test/, list_gallery.txt)"
            raise ReidTrtError(f"{where}: no {missing} images; retrieval needs a query and a "
                               "gallery")
        queries, gallery, name = dataset.query, dataset.gallery, SPLIT_PROTOCOL
    elif dataset.kind == "mot17":  # track ids are per sequence: no identity in two of them
        raise ReidTrtError(f"{where}: no query/gallery split; MOT17 track ids are per sequence, "
                           "so no identity is seen by two cameras; mAP needs a labelled "
                           "cross-camera set (market1501, dukemtmc, msmt17 or cuhk03 layout)")
    else:
        cameras = sorted({s.camid for s in dataset.train if s.pid > 0})
        if len(cameras) < 2:
            raise ReidTrtError(f"{where}: no query/gallery split, and not crops of identities in "
                               "two or more cameras named as Market-1501 does (0001_c1s1_..., "
                               "0001_c2s1_...); mAP needs a labelled cross-camera set")
        # junk and distractors never query
        queries = [s for s in dataset.train if s.camid == cameras[0] and s.pid > 0]
        gallery = [s for s in dataset.train if s.camid != cameras[0]]
        name = FIRST_CAMERA_PROTOCOL.format(camera=cameras[0] + 1)
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
    return evaluate(embedder.embed(p.query_crops), [s.pid for s in p.query], [s.camid for s in p.query],
                    embedder.embed(p.gallery_crops), [s.pid for s in p.gallery], [s.camid for s in p.gallery])
