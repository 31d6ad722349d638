"""Model registry: ``@register_model`` builders and ``create_model``, the only way in.

Built-in names (``cnn``, ``vgg16``, ``resnet18``, ``deit_tiny``) map to the paper's models;
any other name is handed to ``timm.create_model``.
"""
from __future__ import annotations

import fnmatch
import warnings
from typing import Callable

import torch
import torch.nn as nn

from ..errors import UsageError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = fn.__name__
    if name in _MODELS:
        warnings.warn(f"model {name!r} registered twice; the later builder wins", stacklevel=2)
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, num_classes: int, *, pretrained: bool = False,
                 finetune_all: bool = False, **kwargs) -> nn.Module:
    """Build ``name`` with ``num_classes`` outputs.

    Args:
        name: a built-in name or any timm model name.
        pretrained: ImageNet weights from timm's hub, else an installed weights package.
        finetune_all: for models with a frozen backbone by default (deit_tiny), train all.
    """
    if name in _MODELS:
        return _MODELS[name](num_classes=num_classes, pretrained=pretrained,
                             finetune_all=finetune_all, **kwargs)
    return timm_model(name, num_classes, pretrained=pretrained, **kwargs)   # finetune_all: n/a


def place_model(model: nn.Module, device, channels_last: bool) -> nn.Module:
    """``model`` moved to ``device``, in the NHWC layout when ``channels_last`` (in place):
    every model that runs, trained or read back, is laid out this one way."""
    model.to(device)
    if channels_last:
        # NHWC lets oneDNN / cuDNN pick their fast convolution kernels
        model.to(memory_format=torch.channels_last)
    return model


def timm_model(name: str, num_classes: int, pretrained: bool = False, **kwargs) -> nn.Module:
    """A timm model; ``pretrained`` weights from the hub or an installed package (see
    :mod:`.pretrained`), printing where they came from."""
    import timm

    kwargs = {k: v for k, v in kwargs.items() if v is not None}   # unset options: timm's default
    if not timm.list_models(name) and name not in timm.list_models(pretrained=True):
        raise UsageError(f"unknown model {name!r}: not built in ({', '.join(list_models())}) "
                         f"and not a timm model name")
    if not pretrained:
        return timm.create_model(name, num_classes=num_classes, **kwargs)
    from ..utils.console import console
    from .pretrained import (PretrainedSource, PretrainedUnavailable, package_file,
                             resolve_pretrained, unavailable_message)

    source = resolve_pretrained(name)
    if source.kind == "hub":
        try:
            model = timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
            console.print(source.describe())
            return model
        except Exception as err:  # the hub answered but the download failed: try a package
            path = package_file(name)
            if path is None:
                raise PretrainedUnavailable(f"{unavailable_message(name)} (hub: {err})") from err
            source = PretrainedSource("package", path, name)
    model = timm.create_model(name, num_classes=num_classes, **kwargs)
    from .weights import load_weights

    report = load_weights(model, source.where)
    console.print(f"{source.describe()}: {report.summary()}")
    return model
