"""The built distribution works on its own: sdist + wheel from `python -m build`, the wheel
installed into a bare folder, and the CLI run from an unrelated folder with only that copy."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# what a build reads; copied so the build's egg-info and build/ never land in the checkout
SOURCE = ("pyproject.toml", "README.md", "MANIFEST.in", "fastleaf", "configs", "tests",
          "benchmarks")
RECIPES = sorted(path.stem for path in (REPO / "configs").glob("*.yaml"))


def test_listed_packages_are_the_package_folders_plus_the_recipes():
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(init.parent.relative_to(REPO).parts)
               for init in (REPO / "fastleaf").rglob("__init__.py")}
    # a new subpackage left out of the list would be missing from the wheel
    assert set(tool["packages"]) == folders | {"fastleaf.configs"}
    assert tool["package-dir"] == {"fastleaf.configs": "configs"}
    assert not (REPO / "fastleaf" / "configs").exists(), "the recipes have one copy: configs/"


def require_build_tools() -> None:
    """The dev extra brings the build front end and a setuptools new enough for the backend."""
    pytest.importorskip("build", reason="needs the dev extra (pip install -e '.[dev]')")
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("setuptools").split(".")[0])
    except PackageNotFoundError:
        major = 0
    if major < 77:
        pytest.skip("needs the dev extra: setuptools>=77 to build without network")


def build_dists(out: Path) -> tuple[Path, Path]:
    """(sdist, wheel); the wheel is built from the sdist, as pip would build it from PyPI."""
    src = out / "src"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "dali-pack", "gpu-check-logs")
    for name in SOURCE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=ignore)
        elif (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    # --no-isolation: build with the installed setuptools (the dev extra), so no network
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out / "dist"), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout}\n{done.stderr}"
    (sdist,), (wheel,) = (out / "dist").glob("*.tar.gz"), (out / "dist").glob("*.whl")
    return sdist, wheel


def installed_copy(wheel: Path, target: Path, cwd: Path):
    """A runner for commands that see only the wheel installed into ``target``."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    # PYTHONPATH replaced, not extended: the checkout must not be importable
    env = {**os.environ, "PYTHONPATH": str(target), "FASTLEAF_DEBUG": "1"}

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.mark.slow
def test_wheel_installed_elsewhere_lists_shows_and_trains(tmp_path, tiny_data):
    require_build_tools()
    sdist, wheel = build_dists(tmp_path / "build")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"tests/test_wheel.py", "tests/conftest.py", "configs/cnn.yaml",
            "configs/README.md"} <= in_sdist
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    # every recipe, and their README (an installed copy says what each reproduces)
    assert {name for name in in_wheel if name.startswith("fastleaf/configs/")} == \
        {f"fastleaf/configs/{name}.yaml" for name in RECIPES} | {"fastleaf/configs/README.md"}
    assert not any(name.startswith("tests/") for name in in_wheel)

    work = tmp_path / "work"
    work.mkdir()
    target = tmp_path / "site"
    run = installed_copy(wheel, target, work)
    imported = run(sys.executable, "-c", "import fastleaf; print(fastleaf.__file__)")
    assert Path(imported.strip()).is_relative_to(target)

    def fastleaf(*args: str) -> str:
        return run(sys.executable, "-m", "fastleaf", *args)

    from importlib.metadata import version
    # the console script pip wrote, and the version from the installed metadata
    assert run(str(target / "bin" / "fastleaf"), "--version").split() == \
        ["fastleaf", version("fastleaf")]
    listing = fastleaf("configs").split("\n\n")[0].splitlines()
    assert [row.split()[0] for row in listing[1:]] == RECIPES
    shown = yaml.safe_load(fastleaf("configs", "show", "cnn"))
    assert shown["model"] == "cnn" and shown["epochs"] == 20

    out = work / "run"
    fastleaf("train", "--data", str(tiny_data), "--config", "cnn", "--epochs", "1", "--img-size", "112",
        "--batch-size", "16", "--device", "cpu", "--workers", "0", "--no-tensorboard",
        "--no-progress", "--out", str(out))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["model"], saved["optimizer"], saved["scheduler"], saved["epochs"]) == \
        ("cnn", "adam", "plateau", 1)
    assert (out / "best.pt").is_file() and (out / "metrics.csv").is_file()

