import pytest
import torch

from fastleaf.models import create_model, list_models, load_weights
from fastleaf.models.paper_cnn import PaperCNN


def test_paper_cnn_matches_table_1_shapes():
    model = PaperCNN(176).eval()
    shapes = []
    x = torch.zeros(2, 3, 224, 224)
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
            shapes.append(tuple(x.shape[1:]))
    # relu/bn keep the shape of the conv before them; conv3 and conv4 end the feature stack
    assert shapes == [(16, 109, 109), (16, 54, 54), (64, 25, 25), (64, 12, 12),
                      (128, 10, 10), (256, 8, 8)]
    pooled = model.pool(x)
    assert tuple(pooled.shape[1:]) == (256, 1, 1)
    hidden = model.classifier[:3](pooled)
    assert tuple(hidden.shape[1:]) == (4096,)
    assert tuple(model(torch.zeros(2, 3, 224, 224)).shape) == (2, 176)
    assert isinstance(model.classifier[-1], torch.nn.BatchNorm1d)


def test_paper_cnn_layer_order():
    kinds = [type(m).__name__ for m in PaperCNN(10).features]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Conv2d", "ReLU", "BatchNorm2d",
                     "MaxPool2d", "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU"]


def test_builtins_registered():
    assert set(list_models()) >= {"cnn", "vgg16", "resnet18", "deit_tiny"}


@pytest.mark.slow
def test_deit_tiny_paper_head_frozen_backbone():
    model = create_model("deit_tiny", 7)
    head = model.head
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert head[0].in_features == 192 and head[0].out_features == 512
    assert head[2].p == pytest.approx(0.3) and head[3].out_features == 7
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    model.train()
    assert not model.backbone.training      # frozen backbone stays in eval mode
    full = create_model("deit_tiny", 7, finetune_all=True)
    assert any(p.requires_grad for p in full.backbone.parameters())


def test_any_timm_name_and_unknown_name():
    model = create_model("resnet10t", 5)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("no_such_model_xyz", 5)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_loads_offline(tmp_path, suffix):
    source = create_model("resnet18", 1000)       # like an ImageNet checkpoint: other head size
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    else:
        torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    target = create_model("resnet18", 6)
    report = load_weights(target, path)
    assert report.loaded > 50
    assert sorted(report.skipped_shape) == ["fc.bias", "fc.weight"]
    assert torch.equal(target.conv1.weight, source.conv1.weight)


@pytest.mark.slow
def test_deit_backbone_weights_load_under_prefix(tmp_path):
    import timm

    backbone = timm.create_model("deit_tiny_patch16_224", num_classes=1000)
    path = tmp_path / "deit.pth"
    torch.save(backbone.state_dict(), path)
    model = create_model("deit_tiny", 4)
    report = load_weights(model, path)
    assert report.loaded > 100
    assert torch.equal(model.backbone.patch_embed.proj.weight, backbone.patch_embed.proj.weight)


def test_weights_file_with_nothing_matching(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"foo": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="no tensor matches"):
        load_weights(create_model("cnn", 4), path)
