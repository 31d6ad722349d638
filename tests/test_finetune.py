"""The fine-tuning recipe's parts: weight decay groups, backbone LR, per-iteration cosine,
head-only epochs, EMA weights in best.pt, and the per-model data config round trip."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from fastleaf.config import TrainConfig, resolve_config
from fastleaf.models import create_model
from fastleaf.models.data_config import data_config_of, model_data_config, resolve_data_config
from fastleaf.train.freeze import BackboneFreeze, head_module
from fastleaf.train.optim import Schedule, create_optimizer


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def decay_of(optimizer) -> dict[int, float]:
    return {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}


def test_explicit_zero_weight_decay_means_zero():
    model = small_net()
    optimizer = create_optimizer(model, "adamw", 1e-3, weight_decay=0.0)
    assert set(decay_of(optimizer).values()) == {0.0}


def test_adamw_default_decay_skips_norms_and_biases():
    model = small_net()
    decay = decay_of(create_optimizer(model, "adamw", 1e-3, weight_decay=None))
    assert decay[id(model[0].weight)] == 0.05 and decay[id(model[5].weight)] == 0.05
    assert decay[id(model[0].bias)] == 0.0 and decay[id(model[1].weight)] == 0.0
    assert len(decay) == len(list(model.parameters()))


def test_backbone_runs_at_a_fraction_of_the_head_rate():
    model = small_net()
    optimizer = create_optimizer(model, "adamw", 1e-3, backbone_lr=0.1)
    lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr[id(model[5].weight)] == pytest.approx(1e-3)
    assert lr[id(model[0].weight)] == pytest.approx(1e-4)
    assert head_module(model) is model[5]


def test_layer_decay_lowers_the_rate_towards_the_stem():
    model = create_model("resnet18", 5)
    optimizer = create_optimizer(model, "adamw", 1e-3, layer_decay=0.5)
    lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr[id(model.fc.weight)] == pytest.approx(1e-3)
    assert lr[id(model.conv1.weight)] < lr[id(model.layer4[0].conv1.weight)] < 1e-3


def test_cosine_with_warmup_steps_every_iteration():
    optimizer = torch.optim.AdamW(small_net().parameters(), lr=1e-2)
    schedule = Schedule(optimizer, "cosine", epochs=3, warmup_epochs=1, steps_per_epoch=10)
    rates = []
    for _ in range(30):
        schedule.step_update()
        rates.append(schedule.lr)
    assert rates[0] < rates[5] < rates[9] == pytest.approx(1e-2)     # linear warmup
    assert all(a > b for a, b in zip(rates[10:29], rates[11:30]))      # cosine within epochs
    assert rates[-1] == pytest.approx(1e-6, abs=1e-6)
    restored = Schedule(torch.optim.AdamW(small_net().parameters(), lr=1e-2), "cosine",
                        epochs=3, warmup_epochs=1, steps_per_epoch=10)
    restored.load_state_dict(schedule.state_dict())
    assert restored.updates == 30 and restored.lr == pytest.approx(rates[-1])


def test_head_only_epochs_leave_the_backbone_untouched():
    torch.manual_seed(0)
    model = small_net()
    freezer = BackboneFreeze(model, epochs=1)
    optimizer = create_optimizer(model, "adamw", 1e-2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert freezer.set_epoch(1)
    model.train()
    for _ in range(3):
        loss = model(torch.randn(8, 3, 8, 8)).logsumexp(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        assert same == (not key.startswith("5.")), key     # stats and weights: head only
    assert not freezer.set_epoch(2)
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    model(torch.randn(8, 3, 8, 8))
    assert not torch.equal(before["1.running_mean"], model.state_dict()["1.running_mean"])


def test_model_data_config_comes_from_the_weights():
    lite = model_data_config("tf_efficientnet_lite0")
    assert lite.mean == (0.5, 0.5, 0.5) and lite.std == (0.5, 0.5, 0.5) and lite.size == 224
    assert model_data_config("tf_efficientnet_lite2").size == 260
    assert model_data_config("resnet18").mean == pytest.approx((0.485, 0.456, 0.406))
    cfg = resolve_data_config(resolve_config(model="tf_efficientnet_lite1", img_size=224))
    assert cfg.img_size == 224 and cfg.mean == [0.5] * 3
    # the weights' eval filter and crop (bicubic, 0.875 here) are not taken into the run
    assert not {"interpolation", "crop_pct"} & set(cfg.to_dict())
    old = data_config_of(TrainConfig.from_dict({"img_size": 112}))  # saved before mean/std were kept
    assert old.size == 112 and old.mean == pytest.approx((0.485, 0.456, 0.406))


@pytest.fixture(scope="module")
def ema_run(tiny_data, tmp_path_factory):
    from fastleaf.train.trainer import fit

    out = tmp_path_factory.mktemp("ft") / "run"
    cfg = resolve_config(data=str(tiny_data), model="cnn", img_size=112, epochs=2, batch_size=8,
                         lr=1e-3, optimizer="adamw", scheduler="cosine", warmup_epochs=1,
                         freeze_epochs=1, model_ema=True, model_ema_decay=0.9,
                         mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], augment="none",
                         workers=0, device="cpu", amp=False, tensorboard=False,
                         progress=False, out=str(out))
    return fit(cfg).run_dir


def test_best_checkpoint_holds_the_weights_it_names(ema_run):
    from fastleaf.train.checkpoint import load_checkpoint
    from fastleaf.utils.csv_rows import read_rows

    last = load_checkpoint(ema_run / "last.pt")
    assert set(last["ema_model"]) == set(last["model"]) and last["ema"] is False
    differs = [k for k in last["model"] if not torch.equal(last["model"][k], last["ema_model"][k])]
    assert differs                                   # the average is not the raw weights
    best = load_checkpoint(ema_run / "best.pt")
    rows = {int(r["epoch"]): r for r in read_rows(ema_run / "metrics.csv")}
    picked = rows[best["epoch"]]
    # both were scored; the row and the checkpoint name the same pick, the higher of the two
    assert picked["ema"] == str(best["ema"])
    raw, averaged = float(picked["raw_sum"]), float(picked["ema_sum"])
    assert float(picked["sum"]) == pytest.approx(max(raw, averaged))
    assert best["ema"] == (averaged >= raw)
    if best["epoch"] == last["epoch"]:
        held = last["ema_model"] if best["ema"] else last["model"]
        assert all(torch.equal(best["model"][k], held[k]) for k in held)


def test_prediction_normalises_as_training_did(ema_run):
    from fastleaf.predict.ensemble import PredictSettings, ensemble_probs, load_members
    from fastleaf.train.checkpoint import load_checkpoint

    state = load_checkpoint(ema_run / "best.pt")
    assert state["config"]["mean"] == [0.5] * 3 and state["config"]["std"] == [0.5] * 3
    settings = PredictSettings(tta="none", batch_size=8, device="cpu", workers=0, amp=False,
                               loader="workers")
    members = load_members([ema_run])
    samples = members[0].run.val_samples()
    probs = ensemble_probs(members, samples, settings)["none"].probs
    # the validation accuracy training recorded is reproduced from the checkpoint alone
    acc = float((probs.argmax(-1) == torch.as_tensor(samples.labels)).float().mean())
    assert acc == pytest.approx(state["metrics"]["acc"], abs=1e-6)
    run = members[0].run                                          # as if ImageNet's were used
    run.config = replace(run.config, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    other = ensemble_probs(members, samples, settings)["none"].probs
    assert not torch.allclose(probs, other, atol=1e-4)


def test_mean_and_std_take_three_numbers():
    from fastleaf.config import ConfigError

    assert resolve_config(mean=[0.5, 0.5, 0.5]).mean == [0.5, 0.5, 0.5]
    for bad in ([0.5, 0.5], ["a", "b", "c"], 0.5):
        with pytest.raises(ConfigError, match="mean"):
            resolve_config(mean=bad)
