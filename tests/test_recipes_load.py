"""Every built-in recipe resolves to a valid TrainConfig whose model builds."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from fastleaf.config import TrainConfig, load_recipe, resolve_config
from fastleaf.models import create_model
from fastleaf.recipes import recipe_names

NAMES = recipe_names()


def test_the_recipes_are_found():
    assert {"cnn", "vgg16", "resnet18", "deit_tiny", "kaggle_resnet50", "finetune"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_resolves_and_its_model_builds(name):
    recipe = load_recipe(name)
    cfg = resolve_config(name)
    assert isinstance(cfg, TrainConfig)
    values = dataclasses.asdict(cfg)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in recipe.values.items():
        if key in fields:                   # every key the file sets reaches the config
            assert values[key] == value, f"{name}.yaml: {key}"
    # the same values survive the dict round trip a run folder's config.yaml takes
    assert TrainConfig.from_dict(cfg.to_dict(), name) == cfg
    # on the meta device: the architecture is built in full, but vgg16's ~130M weights are
    # neither allocated nor initialised, which keeps this test quick on a small CPU
    with torch.device("meta"):
        model = create_model(cfg.model, num_classes=3, pretrained=False)
    assert isinstance(model, nn.Module)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and linears[-1].out_features == 3, f"{name}: {cfg.model} head is not 3-way"
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
