"""benchmarks/recipes.py: the mean-rank arithmetic its table is sorted by."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "recipes.py"


@pytest.fixture(scope="module")
def recipes():
    spec = importlib.util.spec_from_file_location("recipes_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_rank_averages_ranks_and_splits_ties(recipes):
    scores = {"a": {"ft": 0.9, "plain": 0.5, "no-ema": 0.7},
              "b": {"ft": 0.2, "plain": 0.6, "no-ema": 0.6}}
    ranks = recipes.mean_ranks(scores)
    # set a: ft 1, no-ema 2, plain 3; set b: plain and no-ema tie for 1-2 (1.5 each), ft 3
    assert ranks == {"ft": 2.0, "plain": 2.25, "no-ema": 1.75}
    text = recipes.table(scores, ["ft", "plain", "no-ema"])
    assert text.splitlines()[2].startswith("| no-ema | 0.700 | 0.600 | 1.75 |")


def test_every_recipe_resolves_to_a_valid_config(recipes):
    from fastleaf.config import resolve_config

    for name, (source, options) in recipes.RECIPES.items():
        cfg = resolve_config(source, **options)
        # the weight average is on in the shipped recipe and every variant but the one
        # that switches it off; the plain baseline has none
        assert cfg.model_ema == (name.startswith("finetune") and name != "finetune-no-ema"), name
        for key, value in options.items():
            assert getattr(cfg, key) == value, (name, key)
