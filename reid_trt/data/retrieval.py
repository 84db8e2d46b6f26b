"""How a labelled re-ID set is split into queries and gallery for retrieval (mAP, Rank-1)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from reid_trt.core.errors import ReidTrtError
from reid_trt.data.datasets import ReidDataset, Sample

# How queries meet the gallery. Scored as Market-1501 is (core/metrics.evaluate): gallery images
# of the query's identity from the query's own camera are ignored, junk (pid -1) is ignored,
# distractors (pid 0) stay as negatives.
SPLIT_PROTOCOL = "the set's query vs its gallery, across cameras"
FIRST_CAMERA_PROTOCOL = "camera {camera}'s crops query the other cameras' (CUHK03's camera pairs)"


@dataclass(frozen=True)
class RetrievalSplit:
    query: list[Sample]
    gallery: list[Sample]
    protocol: str  # how they meet, in words


def _require_matches(query: list[Sample], gallery: list[Sample], where: str) -> None:
    """Some query must have its identity in the gallery from another camera (what a true match
    is when scoring), or no mAP can be computed: said here, naming the option and path."""
    cameras_of: dict[int, set[int]] = defaultdict(set)
    for s in gallery:
        cameras_of[s.pid].add(s.camid)
    if not any(cameras_of.get(q.pid, set()) - {q.camid} for q in query if q.pid > 0):
        raise ReidTrtError(f"{where}: no query has a true match in the gallery from another "
                           "camera (one camera, or identities that never meet); mAP needs "
                           "identities seen by two cameras")


def retrieval_split(dataset: ReidDataset, where: str) -> RetrievalSplit:
    """A labelled set's queries and gallery: its own split (query/ and bounding_box_test/, or
    MSMT17's lists; no training split needed), or for one folder of Market-named crops from two
    or more cameras (such as the shared CUHK03 set) the first camera's crops against the other
    cameras'. `where` starts each error (the option and path it came from)."""
    if dataset.query or dataset.gallery:
        if not (dataset.query and dataset.gallery):
            missing = "query" if not dataset.query else "gallery (bounding_box_test/, list_gallery.txt)"
            raise ReidTrtError(f"{where}: no {missing} images; retrieval needs a query and a "
                               "gallery")
        _require_matches(dataset.query, dataset.gallery, where)
        return RetrievalSplit(dataset.query, dataset.gallery, SPLIT_PROTOCOL)
    if dataset.kind == "mot17":  # track ids are per sequence: no identity in two of them
        raise ReidTrtError(f"{where}: no query/gallery split; MOT17 track ids are per sequence, "
                           "so no identity is seen by two cameras; mAP needs a labelled "
                           "cross-camera set (market1501, dukemtmc, msmt17 or cuhk03 layout)")
    cameras = sorted({s.camid for s in dataset.train if s.pid > 0})
    if len(cameras) < 2:
        raise ReidTrtError(f"{where}: no query/gallery split, and not crops of identities in "
                           "two or more cameras named as Market-1501 does (0001_c1s1_..., "
                           "0001_c2s1_...); mAP needs a labelled cross-camera set")
    query = [s for s in dataset.train if s.camid == cameras[0] and s.pid > 0]  # junk never queries
    gallery = [s for s in dataset.train if s.camid != cameras[0]]
    if not {s.pid for s in query} & {s.pid for s in gallery}:
        raise ReidTrtError(f"{where}: no identity of camera {cameras[0] + 1} is seen by another "
                           "camera; mAP needs identities in two cameras")
    return RetrievalSplit(query, gallery, FIRST_CAMERA_PROTOCOL.format(camera=cameras[0] + 1))
