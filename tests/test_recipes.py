"""Built-in recipes: shipped in the package, listed, shown, and taken by name or path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fastleaf.cli import main
from fastleaf.config import TrainConfig, list_recipes, resolve_config
from fastleaf.recipes import describe, locate_config, recipe_dir, recipe_names

PAPER = {"cnn": "cnn", "vgg16": "vgg16", "resnet18": "resnet18", "deit_tiny": "deit_tiny"}
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def files_in_configs() -> list[str]:
    return sorted(path.stem for path in CONFIGS.glob("*.yaml"))


def listed_names(listing: str) -> list[str]:
    """The recipe names in `fastleaf configs` output: the rows between the header and the
    blank line before the usage hint."""
    table = listing.split("\n\n")[0].splitlines()
    assert table[0].split()[0] == "NAME"
    return [row.split()[0] for row in table[1:]]


def test_every_recipe_resolves_and_describes_itself():
    assert set(PAPER) | {"kaggle_resnet50"} <= set(recipe_names())
    for recipe in list_recipes():
        cfg = resolve_config(recipe.name)
        assert isinstance(cfg, TrainConfig)
        assert recipe.description, f"{recipe.name}.yaml has no description line"
        assert recipe.values, f"{recipe.name}.yaml sets nothing"
    for name, model in PAPER.items():
        cfg = resolve_config(name)
        # the paper's schedule: 20 epochs, batch 50, Adam 3e-4, plateau(0.5, 5)
        assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.scheduler,
                cfg.plateau_factor, cfg.plateau_patience) == \
            (model, 20, 50, 3e-4, "adam", "plateau", 0.5, 5)


def test_flags_override_a_recipe_and_a_file_wins_over_a_name(tmp_path, monkeypatch):
    assert resolve_config("resnet18", epochs=2, lr=0.01).epochs == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18.yaml").write_text("model: resnet18\nepochs: 3\n")
    # the user's edited copy in the working folder is read, not the built-in
    assert resolve_config("resnet18.yaml").epochs == 3
    assert resolve_config("resnet18").epochs == 20


def test_an_old_checkout_path_resolves_to_the_built_in_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    file, note = locate_config("configs/cnn.yaml")
    assert file.name == "cnn.yaml" and "built-in recipe 'cnn'" in note
    assert resolve_config("configs/cnn.yaml").model == "cnn"
    assert "configs/cnn.yaml not found" in " ".join(capsys.readouterr().out.split())
    assert locate_config("cnn")[1] is None and locate_config("cnn.yaml")[1] is None


def test_unknown_recipe_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no built-in recipe of that name.*resnet18"):
        resolve_config("resnet81")
    assert main(["train", "--config", "resnet81", "--no-progress"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "--config resnet81" in out and "kaggle_resnet50" in out


def test_description_comment_or_key_and_the_loader_ignores_the_key(tmp_path):
    assert describe("# description: fine-tune lite0\n# more\nmodel: cnn\n") == "fine-tune lite0"
    assert describe("# The paper's CNN\nmodel: cnn\n") == "The paper's CNN"
    keyed = tmp_path / "mine.yaml"
    keyed.write_text("description: 'my own recipe'\nmodel: vgg16\nepochs: 4\n")
    assert describe(keyed.read_text()) == "my own recipe"
    assert (resolve_config(keyed).model, resolve_config(keyed).epochs) == ("vgg16", 4)


def test_configs_command_lists_one_line_each_and_shows_yaml(capsys):
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and line[0] != " "
            and not line.startswith("use:")}
    assert set(rows) == set(recipe_names())
    assert rows["kaggle_resnet50"][1:4] == ["resnet50", "30", "adamw"]
    assert rows["cnn"][1:4] == ["cnn", "20", "adam"]
    assert main(["configs", "show", "deit_tiny"]) == 0
    shown = capsys.readouterr().out
    assert shown == (recipe_dir() / "deit_tiny.yaml").read_text()
    assert yaml.safe_load(shown)["model"] == "deit_tiny"
    assert main(["configs", "show", "nope"]) == 2


def test_configs_lists_every_file_in_configs_and_nothing_else(capsys):
    assert len(files_in_configs()) >= 5
    assert main(["configs"]) == 0
    # the repository's configs/ folder is what a checkout lists, README.md and all else aside
    assert listed_names(capsys.readouterr().out) == files_in_configs()


def test_configs_readme_has_one_row_per_recipe_file():
    rows = [line.split("|")[1:4] for line in (CONFIGS / "README.md").read_text().splitlines()
            if line.startswith("| `")]
    names = [name.strip().strip("`") for name, _, _ in rows]
    assert len(names) == len(set(names)), f"a recipe has two rows in configs/README.md: {names}"
    missing, stale = set(files_in_configs()) - set(names), set(names) - set(files_in_configs())
    assert not missing, f"configs/README.md has no row for {sorted(missing)}"
    assert not stale, f"configs/README.md lists {sorted(stale)}, which configs/ does not have"
    for name, reproduces, source in rows:
        assert reproduces.strip() and source.strip(), f"{name}: a row needs both columns"


def test_configs_answers_without_importing_torch():
    code = ("import sys, fastleaf.cli; fastleaf.cli.main(['configs']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False"
