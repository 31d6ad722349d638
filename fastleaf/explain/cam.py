"""Class-activation heat maps of one image: Grad-CAM / Grad-CAM++ for CNNs, attention rollout
for vision transformers.

    layer_name, layer = target_layer(model, size=224)     # the last spatial block, found
    heat = heatmap(model, x, class_id, "gradcam")          # (S, S) float in [0, 1]

Grad-CAM (Selvaraju et al., ICCV 2017) and Grad-CAM++ (Chattopadhay et al., WACV 2018) come
from the ``grad-cam`` package (pytorch-grad-cam, the ``[explain]`` extra).  The layer they read
is found from the model, not named per architecture: one forward pass of a blank image records
every leaf module's output, and the last one that is still a spatial map (``(B, C, H, W)`` with
``H * W > 1``) is the last convolutional block, before the global pooling: the paper CNN's last
ReLU, ResNet's last block's output activation, VGG's last pooling, EfficientNet's head
convolution.  A ViT's attention is read by rollout (:mod:`fastleaf.viz.attention`), which
needs no gradients and no extra.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..errors import UsageError
from ..viz.attention import attention_modules, cls_heatmap

METHODS = ("auto", "gradcam", "gradcam++", "rollout")


def need_grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError:
        raise UsageError("Grad-CAM needs the [explain] extra: pip install -e \".[explain]\" "
                         "(the grad-cam package)") from None
    return pytorch_grad_cam


def is_vit(model: nn.Module) -> bool:
    return bool(attention_modules(model))


def method_for(model: nn.Module, method: str) -> str:
    """``auto``: rollout for transformers, Grad-CAM otherwise; a CAM of a ViT is refused."""
    if method not in METHODS:
        raise UsageError(f"unknown explain method {method!r}; one of {', '.join(METHODS)}")
    vit = is_vit(model)
    if method == "auto":
        return "rollout" if vit else "gradcam"
    if vit and method != "rollout":
        raise UsageError(f"{method} reads convolution maps; this model is a vision "
                         f"transformer: use --method rollout")
    if not vit and method == "rollout":
        raise UsageError("rollout reads attention; this model has none: use --method gradcam")
    return method


@torch.no_grad()
def target_layer(model: nn.Module, size: int) -> tuple[str, nn.Module]:
    """``(name, module)``: the last leaf module whose output is a spatial map."""
    found: list[tuple[str, nn.Module]] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            handles.append(module.register_forward_hook(
                lambda m, _i, out, name=name: found.append((name, m))
                if isinstance(out, torch.Tensor) and out.dim() == 4
                and out.shape[-1] * out.shape[-2] > 1 else None))
    try:
        model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise UsageError(f"{type(model).__name__} has no convolution map for Grad-CAM")
    return found[-1]


def heatmap(model: nn.Module, x: torch.Tensor, class_id: int, method: str,
            layer: nn.Module | None = None) -> np.ndarray:
    """``(S, S)`` in [0, 1] for the first image of ``x`` ``(1, 3, S, S)`` and ``class_id``."""
    if method == "rollout":
        return cls_heatmap(model, x)
    cams = need_grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    kind = cams.GradCAMPlusPlus if method == "gradcam++" else cams.GradCAM
    layer = layer if layer is not None else target_layer(model, x.shape[-1])[1]
    model.eval()
    with kind(model=model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(class_id))])[0]
    return np.asarray(heat, dtype=np.float32)
