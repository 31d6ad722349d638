"""Every DALI graph fastleaf can build is defined for ``cuda:0`` here, on a machine without a GPU.

Defining a graph is plain Python, and DALI's backend checks each operator's arguments and
devices when the operators are added; only starting the pipeline needs CUDA.  The stub below
adds the operators to a CPU-only backend object (the operators keep their GPU/mixed devices), so
a GPU value fed to a named argument, an unknown argument or a wrong type fails here, in CI, and
not on a user's first GPU run.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from fastleaf.data.augment import AugmentSpec
from fastleaf.loaders.base import LoaderOptions, Shard

pytest.importorskip("nvidia.dali")
pytest.importorskip("nvidia.dali.plugin.pytorch")

from fastleaf.loaders import dali_backend  # noqa: E402
from fastleaf.loaders.dali_graph import GraphOptions, decoder_arguments  # noqa: E402

CUDA = torch.device("cuda:0")
SIZE = 112
GRAPHS = {"kaggle": AugmentSpec.train_preset(SIZE), "light": AugmentSpec.train_preset(SIZE, "light"),
          "none": AugmentSpec.train_preset(SIZE, "none"), "eval": AugmentSpec.eval_preset(SIZE)}
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@pytest.fixture
def define_only(monkeypatch):
    """``Pipeline.build`` that defines the graph and adds every operator, touching no GPU."""
    from nvidia.dali import Pipeline

    def build(self):
        if not self._py_graph_built:
            self._build_graph()
        device_id = self._device_id
        self._device_id = None      # only the backend object is CPU-only
        try:
            self._init_pipeline_backend()
        finally:
            self._device_id = device_id

    monkeypatch.setattr(Pipeline, "build", build)


def serialized(pipe) -> bytes:
    """The graph as DALI's protobuf: operator names and their arguments."""
    return pipe._pipe.SerializeToProtobuf()


@pytest.mark.parametrize("name, dtype, channels_last, sharded", [
    (n, d, c, s) for n, d, c, s in itertools.product(GRAPHS, DTYPES, (True, False), (True, False))])
def test_every_graph_defines_for_a_gpu(define_only, name, dtype, channels_last, sharded):
    spec = GRAPHS[name]
    options = LoaderOptions(batch_size=4, device=CUDA, channels_last=channels_last, dtype=dtype,
                            shard=Shard(1, 2) if sharded else Shard())
    for sizes in ({(SIZE, SIZE)}, {(224, 224), (300, 200)}):    # resize skipped / needed
        pipe = dali_backend.build_pipeline(["a.jpg", "b.jpg"], spec, options,
                                           shard=spec.train, sizes=sizes)
        graph = serialized(pipe)
        assert b"mixed" in graph and b"gpu" in graph


def test_the_gpu_decoder_matches_the_cpu_decoders_chroma_and_sizes_its_buffers(define_only):
    graph = serialized(dali_backend.build_pipeline(
        ["a.jpg"], GRAPHS["eval"], LoaderOptions(batch_size=2, device=CUDA), shard=False,
        sizes={(224, 224), (500, 375)}))
    for argument in (b"jpeg_fancy_upsampling", b"preallocate_width_hint",
                     b"preallocate_height_hint", b"hw_decoder_load"):
        assert argument in graph
    args = decoder_arguments(GraphOptions(gpu=True, max_width=500, max_height=375, pinned=False))
    assert args["jpeg_fancy_upsampling"] is True and args["affine"] is False
    assert (args["preallocate_width_hint"], args["preallocate_height_hint"]) == (500, 375)
    assert decoder_arguments(GraphOptions(gpu=False)) == {}    # libjpeg-turbo's defaults


def test_only_the_training_pipeline_pins_its_decoder_threads():
    sizes = {(SIZE, SIZE)}
    train = dali_backend.graph_options(LoaderOptions(device=CUDA), sizes, GRAPHS["kaggle"])
    val = dali_backend.graph_options(LoaderOptions(device=CUDA), sizes, GRAPHS["eval"])
    assert train.pinned and not val.pinned


def test_files_already_at_the_model_size_are_not_resized(define_only):
    def graph(sizes, spec=GRAPHS["eval"]):
        return serialized(dali_backend.build_pipeline(
            ["a.jpg"], spec, LoaderOptions(batch_size=2, device=CUDA), shard=False, sizes=sizes))

    assert b"Resize" not in graph({(SIZE, SIZE)})
    assert b"Resize" in graph({(SIZE, SIZE), (SIZE + 1, SIZE)})
    assert b"Resize" in graph({(224, 224)})
    # a random crop window always needs scaling to the model's size
    assert b"Resize" in graph({(SIZE, SIZE)}, GRAPHS["kaggle"])


def test_exif_quarter_turns_count_as_swapped_sizes(tiny_data, tmp_path):
    from PIL import Image

    from fastleaf.data.table import load_table

    samples = load_table(tiny_data, val_fraction=0.2, seed=0).val.subset([0])
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6                                     # rotate 90 on display
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    assert dali_backend.check_headers(samples) == {(128, 128)}
    turned = replace(samples, paths=[path])
    assert dali_backend.check_headers(turned) == {(30, 40)}


def test_the_install_hint_names_the_wheel_for_the_installed_torchs_cuda(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert dali_backend.dali_package() == "nvidia-dali-cuda130"
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert dali_backend.dali_package() == "nvidia-dali-cuda120"
    monkeypatch.setattr(dali_backend, "dali_import_error", lambda: "ImportError: no DALI")
    with pytest.raises(dali_backend.DaliUnavailable, match="nvidia-dali-cuda120"):
        dali_backend.require_dali()
