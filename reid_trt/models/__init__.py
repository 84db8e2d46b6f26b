"""The nine torchreid OSNet variants, by name."""

from __future__ import annotations

from dataclasses import dataclass

from reid_trt.core.errors import ReidTrtError

WIDTHS = {
    "x1_0": (64, 256, 384, 512),
    "x0_75": (48, 192, 288, 384),
    "x0_5": (32, 128, 192, 256),
    "x0_25": (16, 64, 96, 128),
}


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # "osnet" (torchreid osnet.py) or "osnet_ain" (osnet_ain.py)
    channels: tuple[int, int, int, int]
    ibn: bool = False

    @property
    def instance_norms(self) -> int:
        """InstanceNorm layers in the network (each must be one ONNX node)."""
        if self.family == "osnet_ain":
            return 5  # conv1 + four OSBlockINin
        return 3 if self.ibn else 0  # conv1 + both blocks of conv2


VARIANTS: dict[str, Variant] = {
    **{f"osnet_{w}": Variant(f"osnet_{w}", "osnet", c) for w, c in WIDTHS.items()},
    "osnet_ibn_x1_0": Variant("osnet_ibn_x1_0", "osnet", WIDTHS["x1_0"], ibn=True),
    **{f"osnet_ain_{w}": Variant(f"osnet_ain_{w}", "osnet_ain", c) for w, c in WIDTHS.items()},
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ReidTrtError(
            f"unknown variant '{name}'; choose one of: {', '.join(VARIANTS)} (or 'auto')"
        ) from None


def build_model(name: str, num_classes: int | None = None):
    """An OSNet of the named variant in eval mode, torchreid-initialised."""
    from reid_trt.models.init import init_like_torchreid
    from reid_trt.models.osnet import OSNet
    from reid_trt.models.osnet_ain import OSNetAIN

    v = get_variant(name)
    if v.family == "osnet_ain":
        model = OSNetAIN(v.channels, num_classes=num_classes)
    else:
        model = OSNet(v.channels, ibn=v.ibn, num_classes=num_classes)
    init_like_torchreid(model)
    return model.eval()
