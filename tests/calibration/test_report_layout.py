"""The calibration's results are typed in the code and keep model.int8.calib.json's layout: JSON
only at the file (core/records.jsonable)."""

import numpy as np
import pytest

from reid_trt.calibration import protocol
from reid_trt.calibration.quantize import Agreement
from reid_trt.calibration.report import MethodTried
from reid_trt.calibration.search import SearchStep
from reid_trt.core.records import jsonable

FIGURES = {"mean_cosine": 0.99, "min_cosine": 0.9, "topk_agreement": 0.95}


def test_a_search_step_is_written_with_its_figures_inline():
    domains = {"camera 2": protocol.DomainFigures(16, 0.98, 0.9)}
    early = Agreement(**FIGURES, domains=domains, rows_scored=64)
    step = SearchStep.of(3, early, "node_conv2d_31").to_dict()
    assert list(step)[:2] == ["excluded", "given_back"] and step["excluded"] == 3
    assert step["rows"] == 64 and step["mean_cosine"] == 0.99 and step["low_cosine"] == 1.0
    assert not {"domains", "rows_scored", "figures"} & set(step)  # the table stays in `domains`
    assert SearchStep(0, early.figures, "subset").to_dict()["rows"] == "subset"
    assert set(SearchStep.of(1, Agreement(**FIGURES)).to_dict()) == {"excluded"} | set(
        jsonable(early.figures))  # scored in full: no rows, no give-back
    assert jsonable(MethodTried(True, early.figures)) == {"equalized": True,
                                                          "all_int8_quick": jsonable(early.figures)}


def test_domains_are_figures_per_group_of_rows():
    cosines = np.array([1.0, 0.5, 0.9, 0.95])
    figures = protocol.domain_figures(cosines, {"camera 1": [0, 3], "blur": [1, 2], "empty": []})
    assert set(figures) == {"camera 1", "blur"}  # a group with no row has no figures
    assert jsonable(figures["blur"]) == {"crops": 2, "mean_cosine": pytest.approx(0.7),
                                         "min_cosine": 0.5}
    name, mean = protocol.worst_domain(figures)
    assert name == "blur" and mean == pytest.approx(0.7)
    assert protocol.worst_domain({}) == ("", 1.0)  # none complete yet: no worst, at its best
