"""The DALI graph: encoded files -> random views as uint8 ``(H, W, 3)``, on the CPU or the GPU.

Defining a graph is plain Python that touches no GPU, so every graph fastleaf can build is
defined in the tests for ``cuda:0`` on a CPU machine (``Pipeline.build`` stubbed): a GPU value
fed where DALI wants CPU data fails there, not on the user's first GPU run.

DALI's rule that shapes this file: *named arguments must be CPU data*.  Random draws
(``fn.random.*``) are CPU operators and may feed named arguments; anything computed from the
images on the GPU (a per-image grey mean) may not, so the contrast blend is arithmetic on the
images instead of ``fn.brightness_contrast(contrast_center=...)``.

The pipeline hands over uint8 HWC: normalising to the model's dtype and layout is one fused
torch pass afterwards (``batch_augment.normalise``, the caches' own), where DALI would write
float32 and a second pass would convert it to bf16.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data.augment import AugmentSpec

READER = "Reader"
# share of each batch for the hardware JPEG decoder (A100/H100/H200), the rest goes to the CUDA
# decoder: DALI's own default, kept until the device check's decode-only rates at 0 / 0.65 / 1
# pick another
HW_DECODER_LOAD = 0.65


@dataclass(frozen=True)
class GraphOptions:
    """What the graph needs besides the augmentation spec (``build_pipeline`` fills it in)."""

    gpu: bool = False
    # every file's (width, height) is already the output size: no resize pass (eval and the
    # non-cropping train views of Classify Leaves' 224 px files)
    native_size: bool = False
    # the largest file's width and height: buffer hints for the hardware decoder
    max_width: int = 0
    max_height: int = 0
    # the mixed decoder's host threads pinned to cores (DALI's default); see graph_options
    pinned: bool = True


def on_device(value, gpu: bool):
    """A CPU draw moved to the GPU for arithmetic with GPU images (constants stay constants)."""
    return value.gpu() if gpu and hasattr(value, "gpu") else value


def uniform(bounds: tuple[float, float], scale: float = 1.0, shape=None):
    """A DALI draw from ``bounds`` (times ``scale``), or the constant when the range is a point."""
    from nvidia.dali import fn

    lo, hi = sorted((bounds[0] * scale, bounds[1] * scale))
    if hi - lo < 1e-6:       # below float32 resolution near 1: DALI needs a real range
        return [lo] * shape[0] if shape else lo
    return fn.random.uniform(range=[lo, hi], **({"shape": shape} if shape else {}))


def flip_sign(probability: float):
    """-1 with ``probability`` (a mirror along that axis), else +1."""
    from nvidia.dali import fn, types

    if probability <= 0:
        return 1.0
    return 1.0 - 2.0 * fn.cast(fn.random.coin_flip(probability=probability), dtype=types.FLOAT)


def warp_matrix(d, size: float):
    """Flips, then rotate / zoom about the centre, then shift: the order of the other backends."""
    from nvidia.dali import fn

    centre = [size / 2, size / 2]
    matrix = fn.transforms.scale(scale=fn.stack(flip_sign(d.hflip), flip_sign(d.vflip))
                                 if d.hflip or d.vflip else [1.0, 1.0], center=centre)
    # DALI's rotation turns clockwise on screen (y points down): negate the angle
    matrix = fn.transforms.rotation(matrix, angle=uniform(d.angle, -1.0), center=centre)
    if d.zoom != (1.0, 1.0):
        zoom = uniform(d.zoom)
        matrix = fn.transforms.scale(matrix, scale=[zoom, zoom] if isinstance(zoom, float)
                                     else fn.stack(zoom, zoom), center=centre)
    if d.shift != (0.0, 0.0):
        matrix = fn.transforms.translation(matrix, offset=uniform(d.shift, size, shape=[2]))
    return matrix


def grey_mean(images):
    """Per-image mean of the ITU-R 601-2 grey, shape ``()``: the other backends' contrast centre.

    Computed on the images' own device; it is data, never a named argument (see the module
    docstring)."""
    from nvidia.dali import fn

    means = fn.reductions.mean(images, axes=[0, 1])                  # (3,) per image
    r, g, b = (fn.slice(means, start=[c], shape=[1], axes=[0]) for c in range(3))
    return fn.reshape(0.2989 * r + 0.587 * g + 0.114 * b, shape=[])


def colour(images, d, gpu: bool):
    """Brightness ``b`` and contrast ``c`` about the grey mean ``m``: ``b * (c*x + (1-c)*m)``,
    rounded and saturated to uint8, as the OpenCV backend's lookup table computes it."""
    from nvidia.dali import fn, types

    b, c = uniform(d.brightness), uniform(d.contrast)
    x = fn.cast(images, dtype=types.FLOAT)
    out = x * on_device(b * c, gpu)
    if d.contrast != (1.0, 1.0):
        out = out + grey_mean(x) * on_device(b * (1.0 - c), gpu)
    return fn.cast(out, dtype=types.UINT8)       # DALI's cast rounds and saturates


def augment(images, spec: AugmentSpec, gpu: bool):
    """Random views of ``(H, W, 3)`` uint8 ``spec.size`` images, uint8 out."""
    from nvidia.dali import fn

    d, size = spec.draws(), float(spec.size)
    if d.affine:
        # flips, rotate and shift-scale-rotate share one affine warp: one interpolation
        images = fn.warp_affine(images, matrix=warp_matrix(d, size), fill_value=0,
                                inverse_map=False)
    elif d.hflip or d.vflip:
        # exact flips, both axes in one pass; the coin flips are CPU draws (named arguments)
        images = fn.flip(images,
                         horizontal=fn.random.coin_flip(probability=d.hflip) if d.hflip else 0,
                         vertical=fn.random.coin_flip(probability=d.vflip) if d.vflip else 0)
    if d.colour:
        images = colour(images, d, gpu)
    return images


def decoder_arguments(graph: GraphOptions) -> dict:
    """The mixed (GPU) decoder's settings; the CPU decoder takes its defaults."""
    if not graph.gpu:
        return {}
    args = {"hw_decoder_load": HW_DECODER_LOAD,
            # nvJPEG's default chroma upsampling differs from libjpeg-turbo's (the CPU decoder
            # and every other backend): the same file would give other pixels on the GPU
            "jpeg_fancy_upsampling": True, "affine": graph.pinned}
    if graph.max_width and graph.max_height:
        # size the hardware decoder's buffers once, instead of growing them batch by batch
        args.update(preallocate_width_hint=graph.max_width,
                    preallocate_height_hint=graph.max_height)
    return args


def decode(encoded, spec: AugmentSpec, graph: GraphOptions):
    """Encoded files -> ``(spec.size, spec.size, 3)`` uint8, whatever the file's size."""
    from nvidia.dali import fn, types

    device = "mixed" if graph.gpu else "cpu"
    args = decoder_arguments(graph)
    draws = spec.draws()
    if draws.random_crop:
        # decode only the crop window, then scale it to the model's size
        images = fn.decoders.image_random_crop(
            encoded, device=device, output_type=types.RGB, random_area=list(draws.crop_scale),
            random_aspect_ratio=list(draws.crop_ratio), **args)
    else:
        images = fn.decoders.image(encoded, device=device, output_type=types.RGB, **args)
        if graph.native_size:
            return images            # every file is already spec.size square: nothing to resize
    # an exact square like the other backends (stretch, linear, antialiased)
    return fn.resize(images, size=[spec.size, spec.size])


def define_graph(files: list[str], spec: AugmentSpec, graph: GraphOptions, shard, seed: int):
    """The graph's outputs: uint8 ``(H, W, 3)`` views and each view's index in ``files``.

    ``shard``: ``(index, count)`` for the reader; ``seed``: its shuffle seed (training).
    """
    from nvidia.dali import fn

    index, count = shard
    encoded, idx = fn.readers.file(
        files=files, labels=list(range(len(files))), name=READER, shard_id=index,
        num_shards=count, pad_last_batch=True, shuffle_after_epoch=spec.train,
        **({"shuffle_after_epoch_seed": seed} if spec.train else {}))
    images = decode(encoded, spec, graph)
    if spec.train:
        images = augment(images, spec, graph.gpu)
    # the row index on the GPU too: the label lookup then never copies from the host
    return images, (idx.gpu() if graph.gpu else idx)
