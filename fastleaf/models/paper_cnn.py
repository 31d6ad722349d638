"""The paper's CNN baseline (its Table 1), layer for layer.

    (3, 224, 224) -> conv7x7/2 16 -> ReLU -> BN -> maxpool3/2   (16, 54, 54)
                  -> conv5x5/2 64 -> ReLU -> BN -> maxpool3/2   (64, 12, 12)
                  -> conv3x3 128 -> ReLU -> BN                  (128, 10, 10)
                  -> conv3x3 256 -> ReLU                        (256, 8, 8)
                  -> adaptive avg pool -> 4096 -> ReLU -> classes -> BatchNorm1d
"""
from __future__ import annotations

import torch
import torch.nn as nn


class PaperCNN(nn.Module):
    def __init__(self, num_classes: int = 176):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=7, stride=2),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(16),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(16, 64, kernel_size=5, stride=2),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(64),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 128, kernel_size=3),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(128),
            nn.Conv2d(128, 256, kernel_size=3),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
            nn.BatchNorm1d(num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))
