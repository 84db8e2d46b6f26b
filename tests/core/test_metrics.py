"""The retrieval protocol on cases small enough to compute by hand."""

import numpy as np
import pytest

from reid_trt.core.errors import ReidTrtError
from reid_trt.core.metrics import distance_matrix, evaluate, neighbour_agreement


def unit(angles_deg):
    a = np.deg2rad(np.asarray(angles_deg, dtype=float))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def test_hand_computed_cmc_and_map():
    # One query (pid 1, cam 0); gallery by increasing angle = increasing cosine distance:
    #   g0 pid 1 cam 0 -> same pid, same cam: removed
    #   g1 pid 2 cam 1 -> wrong       (kept rank 1)
    #   g2 pid 1 cam 1 -> true match  (kept rank 2)
    #   g3 pid -1      -> junk: removed
    #   g4 pid 3 cam 1 -> wrong       (kept rank 3)
    #   g5 pid 1 cam 2 -> true match  (kept rank 4)
    query = unit([0])
    gallery = unit([1, 10, 20, 30, 40, 50])
    scores = evaluate(query, [1], [0], gallery, [1, 2, 1, -1, 3, 1], [0, 1, 1, 1, 1, 2],
                      ranks=(1, 2, 5))
    assert scores.cmc == {1: 0.0, 2: 1.0, 5: 1.0}
    # AP = (1/2 + 2/4) / 2
    assert scores.mAP == pytest.approx(0.5)
    assert scores.queries == 1


def test_two_queries_and_unscorable_query():
    gallery = unit([0, 90, 180])
    query = unit([5, 95, 200])
    # q0 (pid 1, 5 deg) is nearest g0 (pid 1); q1 (pid 2, 95 deg) nearest g1 (pid 2);
    # q2 (pid 9) has no match in the gallery and is not scored.
    scores = evaluate(query, [1, 2, 9], [0, 0, 0], gallery, [1, 2, 3], [1, 1, 1])
    assert scores.queries == 2 and scores.rank1 == 1.0 and scores.mAP == 1.0
    # A pid-1 query at 95 deg ranks g1 (5 deg away), g2 (85), g0 (95): first hit at rank 3.
    scores = evaluate(query[1:2], [1], [0], gallery, [1, 2, 3], [1, 1, 1])
    assert scores.cmc == {1: 0.0, 5: 1.0, 10: 1.0} and scores.mAP == pytest.approx(1 / 3)


def test_euclidean_and_cosine_agree_on_unit_vectors():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(6, 8)), rng.normal(size=(20, 8))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    pids_q, pids_g = np.arange(6), np.tile(np.arange(10), 2)
    cams_q, cams_g = np.zeros(6), np.ones(20)
    a = evaluate(q, pids_q, cams_q, g, pids_g, cams_g, metric="cosine")
    b = evaluate(q, pids_q, cams_q, g, pids_g, cams_g, metric="euclidean")
    assert a == b
    np.testing.assert_allclose(distance_matrix(q, g, "euclidean") ** 2,
                               2 * distance_matrix(q, g, "cosine"), atol=1e-9)


def test_errors():
    with pytest.raises(ReidTrtError, match="no query has a true match"):
        evaluate(unit([0]), [1], [0], unit([1]), [1], [0])
    with pytest.raises(ReidTrtError, match="metric 'manhattan'"):
        distance_matrix(unit([0]), unit([1]), "manhattan")


def test_neighbour_agreement():
    v = unit([0, 10, 20, 90, 100, 110])
    assert neighbour_agreement(v, v, k=2) == 1.0
    # Swap two far-apart items: their neighbour lists change completely.
    w = v[[3, 1, 2, 0, 4, 5]]
    assert 0.0 < neighbour_agreement(v, w, k=2) < 1.0
