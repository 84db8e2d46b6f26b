"""Weights without a checkpoint: torchreid's initialisation, and generated 'trained-like' weights.

No x1_0 / IBN / AIN checkpoint can be downloaded here, so those variants are exercised with
generated weights. Freshly initialised weights are a poor stand-in: BatchNorm running statistics of
0/1 do not match the activations, so numbers blow up or vanish layer by layer and precision checks
pass or fail for the wrong reasons. Generated weights have normalisation affine parameters drawn
like those of the real osnet_x0_25 checkpoints (BN gamma: median 0.12, 95% under 0.35; beta: mean
-0.01, std 0.11) and running statistics re-estimated on person-like crops, as after training.
Uniform gammas around 1 instead make a random deep net chaotic: it amplifies FP16 rounding about
a hundred times more than a trained one does, and precision checks then measure the generator.
"""

from __future__ import annotations

import torch
from torch import nn


def init_like_torchreid(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def generate_weights(variant: str, seed: int = 0, num_classes: int | None = 751,
                     input_size: tuple[int, int] = (256, 128)) -> dict[str, torch.Tensor]:
    """A state dict for `variant` with realistic normalisation statistics (see module doc)."""
    from reid_trt.core.preprocess import preprocess_numpy
    from reid_trt.data.synthetic import person_like_crops
    from reid_trt.models import build_model

    torch.manual_seed(seed)
    model = build_model(variant, num_classes=num_classes)
    norms = [m for m in model.modules()
             if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)) and m.affine]
    for m in norms:
        m.weight.normal_(0.14, 0.09).abs_()
        m.bias.normal_(-0.01, 0.11)
    # Linear layers: fan-in scaled, so the embedding is not a near-constant vector.
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=5 ** 0.5)
            m.bias.normal_(0.0, 0.01)

    # Re-estimate BN running statistics on person-like crops (cumulative average over batches).
    bns = [m for m in norms if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    crops = person_like_crops(32, *input_size, seed=seed + 1)
    batch = torch.from_numpy(preprocess_numpy(crops, input_size))
    model.train()
    for chunk in batch.split(8):
        model(chunk)
    for m in bns:
        m.momentum = 0.1
    return model.eval().state_dict()
