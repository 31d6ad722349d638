"""The paper's four models.  VGG16 and ResNet18 come from timm; DeiT-tiny gets the paper's head."""
from __future__ import annotations

import torch.nn as nn

from ..errors import UsageError
from .paper_cnn import PaperCNN
from .registry import register_model, timm_model


@register_model
def cnn(num_classes: int, pretrained: bool = False, **_) -> nn.Module:
    if pretrained:
        raise UsageError("the paper CNN has no pretrained weights; use --weights FILE")
    return PaperCNN(num_classes)


@register_model
def vgg16(num_classes: int, pretrained: bool = False, finetune_all: bool = False, **kwargs):
    return timm_model("vgg16", num_classes, pretrained=pretrained, **kwargs)


@register_model
def resnet18(num_classes: int, pretrained: bool = False, finetune_all: bool = False, **kwargs):
    return timm_model("resnet18", num_classes, pretrained=pretrained, **kwargs)


class DeitWithHead(nn.Module):
    """DeiT-tiny backbone (192-d class token) + the paper's head 192 -> 512 -> ReLU -> Dropout -> classes."""

    def __init__(self, backbone: nn.Module, num_classes: int, freeze_backbone: bool):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(
            nn.Linear(backbone.num_features, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(512, num_classes),
        )
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()   # a frozen backbone keeps its inference behaviour
        return self

    def forward(self, x):
        return self.head(self.backbone(x))


@register_model
def deit_tiny(num_classes: int, pretrained: bool = False, finetune_all: bool = False, **kwargs):
    backbone = timm_model("deit_tiny_patch16_224", 0, pretrained=pretrained, **kwargs)
    return DeitWithHead(backbone, num_classes, freeze_backbone=not finetune_all)
