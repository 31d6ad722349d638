"""Training configuration: dataclass defaults <- YAML file (``--config``) <- command-line flags.

The resolved configuration is saved in each run folder as ``config.yaml``. ``--config`` takes a
built-in recipe name (``fastleaf configs`` lists them; see :mod:`fastleaf.recipes`) or a YAML
file; either uses the same keys as the flags (with underscores or dashes).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from .errors import FastleafError, MissingFileError
from .recipes import SUFFIX, Recipe, describe, locate_config, recipe_file, recipe_names
from .sources import CsvSource, source_from_value
from .utils.deprecation import deprecation_note
from .vocab import LOADER_ALIASES

@dataclass
class TrainConfig:
    # data
    data: str | CsvSource | None = None   # a data folder, or a CSV (data/csv_source.py)
    val_fraction: float = 0.2     # 0: a final fit on every row, no validation
    fold: int | None = None
    folds: int | None = None
    group_near_duplicates: bool = True   # folds keep visually identical images together
    img_size: int | None = None   # None: the model's own input size (224 for the built-ins)
    mean: list[float] | None = None        # None: the pretrained weights' statistics
    std: list[float] | None = None
    augment: str = "kaggle"
    loader: str = "auto"          # one of vocab.LOADERS; auto picks per device and data size
    workers: int | None = None    # None: chosen with the torch threads (loaders/cpu_split.py)
    check_data: bool = True       # pre-flight check of every row and image before training
    skip_bad: bool = False        # drop rows the check finds bad instead of stopping
    exclude: str | None = None    # an audit.csv: leave its train rows out (run's bad_rows.csv)
    relabel: str | None = None    # an audit.csv: train on its suggested labels (run's relabel.csv)
    # model
    model: str = "cnn"
    pretrained: bool = False
    weights: str | None = None
    finetune_all: bool = False
    drop_path: float | None = None         # stochastic depth rate (timm models); None: timm's
    # optimisation (paper defaults)
    epochs: int = 20
    batch_size: int = 50
    lr: float | str = 3e-4        # "auto": the learning-rate range test picks it first
    optimizer: str = "adam"
    weight_decay: float | None = None      # None: 0.05 for adamw, 0 for adam and sgd
    backbone_lr: float = 1.0               # backbone learning rate as a fraction of --lr
    layer_decay: float | None = None       # layer-wise lr decay (timm models), e.g. 0.75
    freeze_epochs: int = 0                 # train only the head for the first N epochs
    model_ema: bool = False                # also validate an EMA; best.pt: the better one
    model_ema_decay: float | None = None   # None: from the run's optimizer steps (train/ema.py)
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 1e-6          # cosine floor and warmup start
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    grad_accum: int = 1           # micro-batches per optimizer step (effective batch: x this)
    class_weights: str = "none"   # balanced: loss weights from the training counts
    sampler: str = "none"         # balanced: each epoch draws every class equally often
    cutmix: float = 0.0
    mixup: float = 0.0
    mix_prob: float = 1.0
    # checkpoint choice
    eval_metric: str = "sum"      # one of vocab.METRICS picks best.pt (Kaggle scores acc)
    keep_top: int = 0             # also keep the K best epochs' weights (for averaging)
    early_stop: int = 0           # stop after this many epochs without eval_metric improving
    min_delta: float = 0.0        # an improvement must beat the best by more than this
    # speed
    amp: bool | None = None            # None: the measured default for the device
    amp_dtype: str = "auto"
    channels_last: bool | None = None  # None: on (measured faster on CPU and GPU)
    compile: bool = False
    threads: int | None = None         # torch threads on the CPU; None: chosen with the workers
    device: str = "auto"
    sync_bn: bool = False
    # records
    seed: int = 0
    out: str | None = None
    runs_dir: str = "runs"
    tensorboard: bool = True
    tracker: str = "none"         # mlflow: also log params, metrics and artifacts to MLflow
    tracking_uri: str | None = None    # None: sqlite:///<runs_dir>/mlflow.db (no server)
    experiment: str = "fastleaf"
    progress: bool = True
    resume: str | None = None
    overwrite: bool = False       # replace an existing run folder instead of refusing it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        """A config from saved or parsed option values; old spellings are upgraded and
        unknown keys refused, naming ``source``."""
        return make_config(check_keys(upgrade_keys(values, source), source), source)


class ConfigError(FastleafError, ValueError):
    """An option of the wrong type or range, or a broken config file."""


KEYS = {f.name for f in fields(TrainConfig)}
TYPES = {"int": int, "float": float, "str": str, "bool": bool}
# the largest model input side: a Classify Leaves image is 224 px and the biggest timm models
# take about 800; beyond this one decoded batch no longer fits in memory
MAX_IMG_SIZE = 2048
MAX_WORKERS = 256     # loader processes or check threads; more only exhausts the machine


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``low``/``high`` included unless ``open_low``/``open_high``;
    ``None`` leaves that end free.  Every float must also be finite (no nan, no inf)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, value) -> bool:
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high
                                        else value <= self.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        if self.high is None:
            return f"above {self.low}" if self.open_low else f"at least {self.low}"
        if self.low is None:
            return f"below {self.high}" if self.open_high else f"at most {self.high}"
        return (f"in {'(' if self.open_low else '['}{self.low}, {self.high}"
                f"{')' if self.open_high else ']'}")


POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, open_high=True)      # a share of something: 0 allowed, 1 not
# the range of each numeric option, flag or YAML alike (nproc is the launcher's flag)
RANGES = {"epochs": Range(1), "batch_size": Range(1), "img_size": Range(1, MAX_IMG_SIZE),
          "workers": Range(0, MAX_WORKERS), "threads": Range(1), "nproc": Range(1),
          "folds": Range(2), "fold": Range(0), "val_fraction": FRACTION,
          "drop_path": FRACTION,
          "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "backbone_lr": NON_NEGATIVE,
          "layer_decay": Range(0, 1, open_low=True), "freeze_epochs": NON_NEGATIVE,
          "model_ema_decay": Range(0, 1, open_low=True, open_high=True),
          "plateau_factor": Range(0, 1, open_low=True, open_high=True),
          "plateau_patience": NON_NEGATIVE, "min_lr": NON_NEGATIVE,
          "warmup_epochs": NON_NEGATIVE, "label_smoothing": FRACTION,
          "grad_clip": NON_NEGATIVE, "cutmix": NON_NEGATIVE, "mixup": NON_NEGATIVE,
          "mix_prob": Range(0, 1), "keep_top": NON_NEGATIVE, "mean": Range(), "std": POSITIVE,
          "early_stop": NON_NEGATIVE, "min_delta": NON_NEGATIVE, "grad_accum": Range(1)}


def brief(value) -> str:
    """``repr(value)``, cut to a readable length for a one-line error."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_number(key: str, value, source: str, ranges: dict = RANGES) -> None:
    """Refuse a non-finite number, or one outside ``ranges[key]``, naming ``source``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {brief(value)}")
    if key in ranges and not ranges[key].holds(value):
        raise ConfigError(f"{source}: {key} must be {ranges[key]}, got {brief(value)}")


def check_value(key: str, value, source: str) -> None:
    """Refuse a value of the wrong type or outside its range, naming where it came from."""
    if key == "data" and isinstance(value, (dict, CsvSource)):
        source_from_value(value, source)      # any CSV: a mapping of its file and columns
        return
    annotation = {f.name: f.type for f in fields(TrainConfig)}[key]
    allowed = [TYPES[t.strip()] for t in str(annotation).split("|") if t.strip() in TYPES]
    if value is None:
        if "None" in str(annotation):
            return
    elif isinstance(value, bool):
        if bool in allowed:
            return
    elif isinstance(value, (list, tuple)) and "list[float]" in str(annotation):
        # per-channel statistics (mean/std): three numbers, one per RGB channel
        if len(value) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in value):
            for v in value:
                check_number(key, v, source)
            return
        raise ConfigError(f"{source}: {key} must be three numbers (R, G, B), got {brief(value)}")
    elif isinstance(value, int) and (int in allowed or float in allowed) or \
            isinstance(value, float) and float in allowed or \
            isinstance(value, str) and str in allowed:
        if not isinstance(value, str):
            check_number(key, value, source)
        return
    names = " or ".join(t.__name__ for t in allowed) or str(annotation)
    raise ConfigError(f"{source}: {key} must be {names}, got {brief(value)} "
                      f"({type(value).__name__})")


def make_config(values: dict, source: str) -> TrainConfig:
    """A :class:`TrainConfig` from checked values (``source`` names the file or flags)."""
    for key, value in values.items():
        check_value(key, value, source)
    if isinstance(values.get("lr"), str) and values["lr"] != "auto":
        raise ConfigError(f"{source}: lr must be a number or auto, got {brief(values['lr'])}")
    if isinstance(values.get("data"), dict):
        values = {**values, "data": source_from_value(values["data"], source)}
    cfg = TrainConfig(**values)
    if cfg.fold is not None and not cfg.folds:
        raise ConfigError(f"{source}: fold {cfg.fold} needs folds (--folds K) to say how the "
                          f"data is split")
    if cfg.fold is not None and cfg.folds and cfg.fold >= cfg.folds:
        raise ConfigError(f"{source}: fold {cfg.fold} does not exist with {cfg.folds} folds "
                          f"(0..{cfg.folds - 1})")
    return cfg


# options an earlier release recorded (the pretrained weights' eval resize filter and centre
# crop) that no loader ever applied: every backend evaluates the whole photo resized with one
# filter, as training saw it.  Dropped when read, so saved runs and files keep loading.
DROPPED = ("interpolation", "crop_pct")


def upgrade_keys(values: dict, source: str) -> dict:
    """Option values with deprecated keys and values turned into their replacements (configs and
    run folders written before the rename keep loading for one release)."""
    values = {k: v for k, v in values.items() if k not in DROPPED}
    if "cache" in values:
        # `cache: ram|gpu` became `loader: cache-ram|cache-gpu`; `cache: none` meant "as --loader"
        cache = values.pop("cache")
        if cache not in (None, "none"):
            values["loader"] = f"cache-{cache}"
            deprecation_note(f"{source}: 'cache: {cache}'", f"'loader: cache-{cache}'")
    old = values.get("loader")
    if old in LOADER_ALIASES:
        # a renamed backend (`loader: torchvision` became `loader: workers`)
        values["loader"] = LOADER_ALIASES[old]
        deprecation_note(f"{source}: 'loader: {old}'", f"'loader: {values['loader']}'")
    return values


def check_keys(values: dict, source: str) -> dict:
    unknown = sorted(set(values) - KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown option(s) {unknown}")
    return values


MAX_YAML_BYTES = 1 << 20     # an options file is a few hundred bytes; this one is not one


class NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (``*name``): nested aliases expand a few hundred
    bytes into gigabytes (a "billion laughs"), and no options file needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def read_yaml(file, label: str):
    """The YAML document in ``file`` (a path or a packaged resource), refused in one line when
    it is too large, not UTF-8 text, or not valid YAML; ``label`` names it."""
    # a file's size is known before reading it; a packaged recipe is small
    size = file.stat().st_size if isinstance(file, Path) else 0
    data = file.read_bytes() if size <= MAX_YAML_BYTES else b""
    if max(size, len(data)) > MAX_YAML_BYTES:
        raise ConfigError(f"{label}: {max(size, len(data)):,} bytes is too large for a YAML "
                          f"options file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not a UTF-8 text file (a YAML file was expected)") from None
    return parse_document(text, label)


def parse_document(text: str, label: str):
    try:
        return yaml.load(text, Loader=NoAliasLoader)
    except yaml.YAMLError as err:
        said = " ".join(str(err).split())
        raise ConfigError(f"{label}: not valid YAML ({said[:300]})") from None


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file not found: {path}")
    return option_values(read_yaml(path, str(path)), str(path))


def parse_yaml(text: str, label: str) -> dict:
    """Option values from YAML ``text``, each of its option's type; ``label`` names the file."""
    return option_values(parse_document(text, label), label)


def option_values(data, label: str) -> dict:
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping of option: value")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    # a recipe may describe itself; the description is for `fastleaf configs`, not an option
    data.pop("description", None)
    data = check_keys(upgrade_keys(data, label), label)
    for key, value in data.items():
        check_value(key, value, label)
    return data


def load_config_source(source: str | Path) -> dict:
    """Option values of a ``--config`` value: a YAML file, or a built-in recipe's name."""
    file, note = locate_config(source)
    if note:
        from rich.markup import escape

        from .utils.console import console

        console.print(f"[yellow]note: {escape(note)}[/yellow]")
    return option_values(read_yaml(file, str(file)), str(file))


def load_recipe(name: str) -> Recipe:
    """The built-in recipe ``name``: its description and the options it sets, checked."""
    file = recipe_file(name)
    text = file.read_text()
    return Recipe(file.name[:-len(SUFFIX)], describe(text), parse_yaml(text, str(file)))


def list_recipes() -> list[Recipe]:
    return [load_recipe(name) for name in recipe_names()]


def resolve_config(config_file: str | Path | None = None, **overrides) -> TrainConfig:
    """Defaults, then the YAML file or built-in recipe, then every override that is not None."""
    values = load_config_source(config_file) if config_file else {}
    overrides = upgrade_keys({k: v for k, v in overrides.items() if v is not None}, "options")
    unknown = sorted(set(overrides) - KEYS)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}")
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        check_value(key, value, f"--{key.replace('_', '-')}")
    values.update(given)
    return TrainConfig.from_dict(values, str(config_file or "options"))


def save_config(config: TrainConfig, path: Path) -> None:
    from .utils.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
