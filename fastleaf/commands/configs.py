"""``fastleaf configs``: the built-in recipes, one line each; ``configs show NAME`` prints one."""
from __future__ import annotations

import argparse

NAME = "configs"
HELP = "list the built-in recipes (paper and Kaggle settings); 'configs show NAME' prints one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="one line per recipe (the default)")
    show = sub.add_parser("show", help="print a recipe's YAML, to copy and edit")
    show.add_argument("name", help="a recipe name from 'fastleaf configs'")


def recipe_lines() -> list[str]:
    """The listing: name, model, epochs, optimizer and what the recipe reproduces."""
    from ..config import TrainConfig, list_recipes

    recipes = list_recipes()
    rows = [("NAME", "MODEL", "EPOCHS", "OPTIMIZER", "REPRODUCES")]
    for recipe in recipes:
        cfg = TrainConfig.from_dict(recipe.values, recipe.name)
        rows.append((recipe.name, cfg.model, str(cfg.epochs), cfg.optimizer, recipe.description))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4]
            for row in rows]


def run(args: argparse.Namespace) -> int:
    # plain print, not the rich console: YAML and long lines must come out exactly as they are
    if args.action == "show":
        from ..recipes import recipe_file

        print(recipe_file(args.name).read_text(), end="")
        return 0
    print("\n".join(recipe_lines()))
    print("\nuse: fastleaf train --data DIR --config NAME (flags override it); "
          "fastleaf configs show NAME > my.yaml, edit, then --config my.yaml")
    return 0
