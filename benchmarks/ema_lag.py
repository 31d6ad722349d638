"""How far the weight EMA trails the raw model in a short run, and why.

Trains the same short run (about 20 optimizer steps an epoch, as a small fine-tune set gives)
with the old EMA (fixed decay 0.998, BatchNorm statistics averaged), with copied statistics,
and with the run-length decay; prints timm's effective decay
per step, the raw and averaged validation accuracy per epoch (both are validated every
epoch), and for the final average: its accuracy with its own averaged BatchNorm statistics
against the same weights with statistics re-estimated on the training images.

    # results/2026-12-06-ema-lag.md: about 3 CPU minutes for the three 8-epoch runs
    PYTHONPATH=$PWD python benchmarks/ema_lag.py --out /tmp/ema-lag
    PYTHONPATH=$PWD python benchmarks/ema_lag.py --out /tmp/ema-lag --epochs 3 --decays 0.998+avg-bn
    PYTHONPATH=$PWD python benchmarks/ema_lag.py --out /tmp/ema-lag --model tf_efficientnet_lite0 \
        --pretrained --img-size 224
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fastleaf.config import resolve_config
from fastleaf.data.synth import make_synthetic
from fastleaf.predict.run_folder import open_run
from fastleaf.train.checkpoint import load_checkpoint
from fastleaf.train.ema import create_ema
from fastleaf.utils.csv_rows import read_rows
from fastleaf.train import trainer
from fastleaf.train.trainer import fit


def averaging_norms(model, decay: float):
    """The EMA with BatchNorm's running statistics averaged like the weights (timm's default)."""
    from timm.utils import ModelEmaV3

    ema = ModelEmaV3(model, decay=decay, use_warmup=True)
    ema.module.requires_grad_(False)
    return ema


def effective_decays(decay: float, steps: int) -> list[float]:
    """timm ModelEmaV3's decay at each step 1..steps (warmup on, as the trainer builds it)."""
    ema = create_ema(torch.nn.Linear(1, 1), decay)
    return [ema.get_decay(t) for t in range(1, steps + 1)]


@torch.no_grad()
def accuracy(model, loader) -> float:
    model.eval()
    right = seen = 0
    for images, labels in loader:
        right += int((model(images).argmax(-1) == labels).sum())
        seen += len(labels)
    return right / max(seen, 1)


@torch.no_grad()
def recalibrated(model, loader):
    """``model`` with BatchNorm statistics re-estimated on ``loader`` (a cumulative average)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for images, _ in loader:
        model(images)
    return model.eval()


def with_buffers(run, weights: dict, buffers: dict):
    """The run's model with ``weights``' parameters and ``buffers``' norm statistics."""
    model = run.build_model("cpu")
    names = {name for name, _ in model.named_buffers()}
    model.load_state_dict({k: (buffers if k in names else weights)[k] for k in weights})
    return model


def bn_check(run_dir: Path) -> dict:
    """The final average and raw weights, each with the other's norm statistics, and the average
    with statistics re-estimated on the training images."""
    run = open_run(run_dir, file="last.pt")
    last = load_checkpoint(run_dir / "last.pt")
    raw, averaged = last["model"], last["ema_model"]
    device = torch.device("cpu")
    val = run.eval_loader(run.val_samples(), device, workers=0, loader="workers")
    train = run.eval_loader(run.table().train, device, workers=0, loader="workers")
    return {"ema_own_stats": accuracy(with_buffers(run, averaged, averaged), val),
            "ema_with_raw_stats": accuracy(with_buffers(run, averaged, raw), val),
            "raw_with_ema_stats": accuracy(with_buffers(run, raw, averaged), val),
            "ema_recalibrated_stats": accuracy(
                recalibrated(with_buffers(run, averaged, averaged), train), val)}


def one_run(data: Path, out: Path, args, decay: float | None) -> list[dict]:
    cfg = resolve_config(args.config, data=str(data), model=args.model, img_size=args.img_size,
                         epochs=args.epochs, batch_size=args.batch_size, model_ema=True,
                         model_ema_decay=decay, pretrained=args.pretrained, weights=args.weights,
                         workers=0, device="cpu",
                         amp=False, loader="workers", tensorboard=False, progress=False,
                         check_data=False, out=str(out), overwrite=True, eval_metric="acc")
    fit(cfg)
    return read_rows(out / "metrics.csv")


def report(run_dir: Path, label: str) -> None:
    rows = read_rows(run_dir / "metrics.csv")
    last = load_checkpoint(run_dir / "last.pt")
    steps = int(last["scheduler"]["updates"])
    per_epoch = steps // len(rows)
    decays = effective_decays(last["config"]["model_ema_decay"], steps)
    marks = sorted({1, 2, per_epoch, 2 * per_epoch, steps // 2, steps})
    print(f"\n== decay {label}: configured {last['config']['model_ema_decay']:.4f}; {steps} steps "
          f"({per_epoch} an epoch); effective decay at step "
          + ", ".join(f"{t}: {decays[t - 1]:.3f}" for t in marks))
    print("epoch  raw_acc  ema_acc  picked")
    for r in rows:
        print(f"{r['epoch']:>5}  {float(r['raw_acc']):.3f}    {float(r['ema_acc']):.3f}    "
              f"{'ema' if r['ema'] == 'True' else 'raw'}")
    print("final average, BatchNorm statistics:",
          {k: round(v, 3) for k, v in bn_check(run_dir).items()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", default="cnn")
    p.add_argument("--config", default="finetune", help="the recipe the runs follow")
    p.add_argument("--pretrained", action="store_true")
    p.add_argument("--weights", help="start from these weights (a fine-tune from a run)")
    p.add_argument("--data", type=Path, help="a Kaggle-layout folder instead of a synthetic set")
    p.add_argument("--classes", type=int, default=30)
    p.add_argument("--train-per-class", type=int, default=20)
    p.add_argument("--img-size", type=int, default=112)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--decays", default="0.998+avg-bn,0.998,auto",
                   help="comma-separated; auto: the run-length decay; +avg-bn: average the "
                        "BatchNorm statistics too (the EMA as it was before they were copied)")
    args = p.parse_args()
    data = args.data or args.out / f"data-{args.classes}x{args.train_per_class}"
    if not (data / "train.csv").is_file():
        make_synthetic(data, num_classes=args.classes, train_per_class=args.train_per_class,
                       test_per_class=1, size=args.img_size, seed=0)
    for label in args.decays.split(","):
        decay, _, variant = label.partition("+")
        run_dir = args.out / f"{label}-{args.epochs}ep"
        trainer.create_ema = averaging_norms if variant == "avg-bn" else create_ema
        one_run(data, run_dir, args, None if decay == "auto" else float(decay))
        report(run_dir, label)


if __name__ == "__main__":
    main()
