"""Loading torchreid checkpoints safely, detecting the variant, and refusing anything that does
not fit: a model never runs on silently random weights.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from reid_trt.core.errors import CheckpointError, opt
from reid_trt.models import VARIANTS, WIDTHS, build_model, get_variant

# Keys under which training scripts nest the weights (torchreid saves 'state_dict').
NESTING_KEYS = ("state_dict", "model", "model_state_dict", "net")
IGNORED_PREFIXES = ("classifier.",)


def _short(names: list[str], limit: int = 4) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_state_dict(path: Path | str, trust: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: nested dicts unwrapped, `module.` prefixes stripped.

    Args:
        path: a torchreid training checkpoint or a bare state dict.
        trust: allow arbitrary pickled objects (runs code from the file: only for trusted files).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; pass {opt('weights')} the path of a torchreid .pth")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(e), re.IGNORECASE)
        if found and not trust:
            raise CheckpointError(
                f"{path} holds pickled Python objects ({found.group(1)}) that safe loading "
                f"refuses; if you trust its source, pass {opt('trust_checkpoint')}"
            ) from None
        reason = str(e).strip().splitlines()[-3 if found is None else 0][:160]
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {reason}"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch's unpickler raises KeyError, IndexError, ...
        # on non-checkpoint bytes: every failure to read an existing file means the same thing.
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {reason}"
        ) from None

    for key in NESTING_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a state dict; save model.state_dict()"
        )
    tensors = {str(k).removeprefix("module."): v for k, v in obj.items()
               if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} contains no tensors; is it a model checkpoint?")
    broken = sorted(k for k, v in tensors.items()
                    if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:
        # NaN/Inf weights export "fine" and give every crop the same (or a NaN) embedding.
        raise CheckpointError(f"{path}: {len(broken)} tensors hold NaN or Inf ({_short(broken)}); "
                              "the weights are broken (training diverged?): use another checkpoint")
    return tensors


@dataclass(frozen=True)
class Detection:
    variant: str
    evidence: tuple[str, ...]


def detect_variant(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> Detection:
    """The torchreid variant a state dict was saved from, judged by its keys and shapes."""
    stem = state.get("conv1.conv.weight")
    if stem is None or stem.ndim != 4 or tuple(stem.shape[1:]) != (3, 7, 7):
        raise CheckpointError(
            f"{source} is not an OSNet state dict: no 7x7 stem 'conv1.conv.weight' "
            f"(first keys: {_short(sorted(state))}); pass an OSNet checkpoint"
        )
    evidence = [f"conv1.conv.weight {tuple(stem.shape)}"]
    width = next((w for w, c in WIDTHS.items() if c[0] == stem.shape[0]), None)
    if width is None:
        raise CheckpointError(
            f"{source}: stem has {stem.shape[0]} channels; OSNet widths have "
            f"{', '.join(str(c[0]) for c in WIDTHS.values())}"
        )
    evidence.append(f"{stem.shape[0]} stem channels -> width {width}")
    if "conv2.0.conv2.0.layers.0.conv1.weight" in state:
        name = f"osnet_ain_{width}"
        evidence.append("streams as conv2.N.layers (osnet_ain.py layout)")
    elif "conv2.0.conv2a.conv1.weight" in state:
        evidence.append("streams as conv2a..conv2d (osnet.py layout)")
        if "conv2.0.IN.weight" in state:
            evidence.append("InstanceNorm after the conv2 blocks (IBN)")
            name = f"osnet_ibn_{width}"
        else:
            name = f"osnet_{width}"
    else:
        raise CheckpointError(
            f"{source}: no OSNet block keys (conv2.0.conv2a.* or conv2.0.conv2.0.layers.*); "
            "pass a torchreid OSNet checkpoint"
        )
    if name not in VARIANTS:
        raise CheckpointError(f"{source} looks like '{name}', which torchreid does not define")
    return Detection(name, tuple(evidence))


def check_keys(model: torch.nn.Module, state: Mapping[str, torch.Tensor], variant: str,
               source: str) -> dict[str, torch.Tensor]:
    """The subset of `state` that loads into `model`; any gap or mismatch is an error."""
    expected = model.state_dict()
    given = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mis_shaped = [f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
                  for k in sorted(set(given) & set(expected)) if given[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys: {_short(unexpected)}")
    if mis_shaped:
        problems.append(f"{len(mis_shaped)} mis-shaped: {_short(mis_shaped, 2)}")
    if problems:
        try:
            detected = detect_variant(state, source).variant
        except CheckpointError:
            detected = None
        if detected == variant:  # the right architecture, tensors missing or wrong: the file
            cause = (f"it is a {variant} checkpoint, damaged, cut short or edited; restore it "
                     "(copy or download it again, or save it again from training)")
        elif detected is not None:
            cause = f"it looks like {detected}: pass {opt('variant')} auto or {detected}"
        else:
            cause = "it does not look like any OSNet variant; pass a torchreid OSNet checkpoint"
        raise CheckpointError(f"{source} does not fit {variant}: {'; '.join(problems)}; {cause}")
    return given


@dataclass
class LoadedModel:
    model: torch.nn.Module
    variant: str
    evidence: tuple[str, ...]


def load_model(path: Path | str, variant: str = "auto", trust: bool = False) -> LoadedModel:
    """An eval-mode OSNet with the checkpoint's weights; the classifier, if any, is dropped."""
    state = load_state_dict(path, trust=trust)
    source = str(path)
    if variant == "auto":
        detection = detect_variant(state, source)
        variant, evidence = detection.variant, detection.evidence
    else:
        get_variant(variant)
        evidence = (f"variant {variant} as given",)
    model = build_model(variant)
    model.load_state_dict(check_keys(model, state, variant, source), strict=True)
    return LoadedModel(model.eval(), variant, evidence)
