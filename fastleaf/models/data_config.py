"""Per-model data configuration: input size and mean/std.

Pretrained weights expect the inputs they were trained on: timm's ``pretrained_cfg`` says which
(TF-ported EfficientNet-Lite weights use mean = std = 0.5, torchvision-style ones ImageNet's
statistics).  Training resolves it once (:func:`resolve_data_config`) into the run's config, the
checkpoint stores that config, and every later reader rebuilds the same normalisation from it
(:func:`data_config_of`), so prediction normalises exactly as training did.

    dc = model_data_config("tf_efficientnet_lite0")   # DataConfig(224, (0.5,)*3, (0.5,)*3)
    spec = eval_spec(data_config_of(open_run("runs/x").config))

The weights' eval resize filter and centre crop (timm's ``interpolation``/``crop_pct``) are not
taken: a fine-tuned model is trained on views of the whole photo and its best epoch chosen on
whole photos, so every backend evaluates the whole photo resized with one antialiased filter.
ImageNet's centre crop would cut the edges of frame-filling leaves and score other views than
the ones that chose best.pt; the decode-once caches could not make it from the pixels they hold.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..data.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentSpec
from ..errors import UsageError

DEFAULT_SIZE = 224


@dataclass(frozen=True)
class DataConfig:
    size: int = DEFAULT_SIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def model_data_config(name: str) -> DataConfig:
    """What ``name``'s pretrained weights expect; ImageNet defaults for models timm has no
    pretrained configuration for (the paper CNN)."""
    from .pretrained import BUILTIN_ARCH

    arch = BUILTIN_ARCH.get(name, name)
    if name == "cnn":
        return DataConfig()
    import timm

    cfg = timm.get_pretrained_cfg(arch)
    if cfg is None:
        return DataConfig()
    return DataConfig(size=int(cfg.input_size[-1]), mean=tuple(float(v) for v in cfg.mean),
                      std=tuple(float(v) for v in cfg.std))


def resolve_data_config(cfg):
    """``cfg`` (a TrainConfig) with every unset data field taken from the model's config."""
    model = model_data_config(cfg.model)
    return replace(cfg,
                   img_size=model.size if cfg.img_size is None else cfg.img_size,
                   mean=list(model.mean) if cfg.mean is None else list(cfg.mean),
                   std=list(model.std) if cfg.std is None else list(cfg.std))


def _triple(values, key: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise UsageError(f"{key} needs 3 values (R, G, B), got {len(values)}")
    if key == "std" and any(v <= 0 for v in values):
        raise UsageError(f"std values must be > 0, got {values}")
    return values


def data_config_of(cfg) -> DataConfig:
    """The data config a run trained with, from its config (a TrainConfig, as
    :func:`fastleaf.predict.run_folder.open_run` reads it from a checkpoint).

    Runs saved before mean/std were recorded normalised with ImageNet's statistics at 224:
    the :class:`DataConfig` defaults stand in for whatever the run left unset.
    """
    base = DataConfig()

    def pick(value, fallback):
        return fallback if value is None else value

    return DataConfig(size=int(pick(cfg.img_size, base.size)),
                      mean=_triple(pick(cfg.mean, base.mean), "mean"),
                      std=_triple(pick(cfg.std, base.std), "std"))


def train_spec(dc: DataConfig, strength: str) -> AugmentSpec:
    return replace(AugmentSpec.train_preset(dc.size, strength), mean=dc.mean, std=dc.std)


def eval_spec(dc: DataConfig) -> AugmentSpec:
    return replace(AugmentSpec.eval_preset(dc.size), mean=dc.mean, std=dc.std)
