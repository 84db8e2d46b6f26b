"""The models are torchreid's, layer for layer: same keys, same shapes, same numbers."""

import numpy as np
import pytest
import torch

from reid_trt.core.preprocess import preprocess_numpy
from reid_trt.data.synthetic import person_like_crops
from reid_trt.models import VARIANTS, build_model
from reid_trt.models.checkpoint import load_model
from reid_trt.models.init import generate_weights
from tests.conftest import SMALL


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_torchreid_reference(variant, torchreid):
    family = torchreid.osnet_ain if VARIANTS[variant].family == "osnet_ain" else torchreid.osnet
    reference = getattr(family, variant)(num_classes=751, pretrained=False).eval()
    state = generate_weights(variant, seed=3, num_classes=751, input_size=SMALL)

    # Our generated state dict loads strictly into torchreid's model: identical keys and shapes.
    reference.load_state_dict(state, strict=True)
    ours = build_model(variant, num_classes=751)
    ours.load_state_dict(state, strict=True)

    x = torch.from_numpy(preprocess_numpy(person_like_crops(4, *SMALL, seed=5), SMALL))
    with torch.no_grad():
        want, got = reference(x), ours(x)
    assert got.shape == (4, 512)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_parameter_counts_match_the_paper():
    # OSNet paper, table: x1.0 2.2M, x0.75 1.3M, x0.5 0.6M, x0.25 0.2M (without classifier).
    millions = {name: sum(p.numel() for p in build_model(name).parameters()) / 1e6
                for name in ("osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25")}
    assert [round(v, 1) for v in millions.values()] == [2.2, 1.3, 0.6, 0.2]


@pytest.mark.parametrize("variant,count", [("osnet_x1_0", 0), ("osnet_ibn_x1_0", 3),
                                           ("osnet_ain_x0_5", 5)])
def test_instance_norm_layers(variant, count):
    model = build_model(variant)
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in model.modules()) == count
    assert VARIANTS[variant].instance_norms == count


def test_real_market1501_weights_rank_the_true_match_first(real_weights, market_crops,
                                                           shared_data):
    # Identity 0001 is the only one seen by two cameras among the nine crops (SOURCES.md).
    names = sorted(p.name for p in (shared_data / "reid" / "market1501").iterdir())
    query, positive = names.index("0001_c1s1_001051_00.jpg"), names.index("0001_c6s1_009601_00.jpg")
    for weights in real_weights.values():
        model = load_model(weights).model
        with torch.no_grad():
            emb = model(torch.from_numpy(preprocess_numpy(market_crops)))
        emb = torch.nn.functional.normalize(emb, dim=1).numpy()
        similarity = emb @ emb[query]
        similarity[query] = -np.inf
        assert int(np.argmax(similarity)) == positive
