"""Graphs exported for a tracker that feeds the model its own way (`reid-export onnx --for`).

Each consumer's input rules, as its code applies them (read from the packages: boxmot 25,
ultralytics 8.4; DeepStream's nvtracker from its documented ReID config keys):
- BoxMOT's ONNX/TensorRT backends normalise crops themselves (cv2 INTER_LINEAR resize, RGB, /255,
  ImageNet mean/std) into N,3,H,W float; its TensorRT backend looks the tensors up by the names
  `images` and `output`; it finds the architecture in the file name (osnet_x0_25...).
- Ultralytics' trackers (BoT-SORT `model:`) feed any non-.pt model RGB / 255 with no mean/std, at
  the graph's own static height and width (bilinear torch resize); the raw output is the
  embedding. So: float-rgb01 input, normalisation inside, static spatial dims.
- DeepStream computes y = netScaleFactor * (x - offsets[c]) on 0-255 pixels, one scale for all
  channels, which cannot express ImageNet's per-channel std: the graph takes RGB 0-255
  (offsets 0, netScaleFactor 1) and normalises exactly inside.
"""

from __future__ import annotations

from pathlib import Path

from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.options import ConfigError, Consumer, InputFormat

INPUT_FORMAT = {Consumer.BOXMOT: InputFormat.FLOAT, Consumer.ULTRALYTICS: InputFormat.RGB01,
                Consumer.DEEPSTREAM: InputFormat.RGB255}
BOXMOT_NAMES = {"input_name": "images", "output_name": "output"}


def check_consumer(config) -> InputFormat:
    """The input format of an ExportConfig: its own, else what its consumer feeds, else float;
    and its other options against the consumer."""
    wanted = consumer_input_format(config.consumer, config.input_format)
    if config.consumer == Consumer.ULTRALYTICS and config.io_dtype != "fp32":
        raise ConfigError("io_dtype", config.io_dtype, "Ultralytics feeds float32; keep fp32 I/O "
                          "(an fp16 graph still computes in fp16)")
    return wanted


def consumer_input_format(consumer: Consumer | None, given: InputFormat | None) -> InputFormat:
    """The input format for `--for consumer` when --input is not given; an --input that
    says otherwise (float included) is an error."""
    if consumer is None:
        return given or InputFormat.FLOAT
    wanted = INPUT_FORMAT[Consumer(consumer)]
    if given is not None and given != wanted:
        raise ConfigError("input_format", given, f"{consumer} feeds {wanted}; drop {opt('input_format')} "
                          f"with {opt('consumer')}")
    return wanted


def tensor_names(consumer: Consumer | None) -> dict[str, str]:
    return dict(BOXMOT_NAMES) if consumer == Consumer.BOXMOT else {}


def boxmot_architecture(path: Path) -> str | None:
    """The architecture BoxMOT reads from a file name: the longest OSNet name in it."""
    from reid_trt.models import VARIANTS

    name = Path(path).name.lower()
    found = [v for v in VARIANTS if v in name]
    return max(found, key=len) if found else None


def check_boxmot_name(output: Path, variant: str | None = None) -> None:
    """BoxMOT builds its model from the architecture in the file name: it must be there, and be
    this checkpoint's."""
    found = boxmot_architecture(output)
    if found is None:
        raise ReidTrtError(f"-o {output}: BoxMOT finds the architecture in the file name and this "
                           f"one has none; name it like {variant or 'osnet_x0_25'}_msmt17.onnx")
    if variant is not None and found != variant:
        raise ReidTrtError(f"-o {output}: the name says {found} but the checkpoint is {variant}; "
                           f"BoxMOT would take it for {found}; name it like {variant}_....onnx")
