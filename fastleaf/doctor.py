"""What fastleaf finds on this machine, in one screen to paste into a bug report.

    fastleaf doctor

Versions of the libraries (or why one does not import), the CUDA devices, the CPU's vector
and bf16 capability, and the defaults a plain ``fastleaf train`` would take here, each with
its reason. The decisions are the trainer's own (``with_speed_defaults``, ``resolve_backend``,
``plan_split``), asked rather than restated.
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# flags that decide CPU speed here: AVX2 is the floor; AVX512-BF16 / AMX give native bf16
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
LIBRARIES = ("torch", "torchvision", "timm", "DALI", "albumentations", "cv2")


@dataclass(frozen=True)
class Row:
    section: str
    item: str
    value: str
    why: str = ""


def import_problem(err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}"[:160]


def library_row(label: str, module_name: str) -> Row:
    """A library's version, or why it does not import (a broken install can raise anything)."""
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        return Row("libraries", label, "not usable", import_problem(err))
    version = getattr(module, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        try:
            version = dist_version(module_name)
        except PackageNotFoundError:
            version = "unknown version"
    return Row("libraries", label, str(version))


def dali_row() -> Row:
    from .loaders.dali_backend import dali_import_error

    problem = dali_import_error()    # the loader's own test: DALI and its PyTorch plugin
    if problem is not None:
        return Row("libraries", "DALI", "not usable", problem[:160])
    return library_row("DALI", "nvidia.dali")


def library_rows() -> list[Row]:
    from . import __version__

    rows = [Row("libraries", "python", platform.python_version(), sys.executable),
            Row("libraries", "fastleaf", __version__, str(Path(__file__).parent))]
    for name in LIBRARIES:
        if name != "DALI":
            rows.append(library_row(name, name))
        elif torch_usable(rows):     # the loader module that tests DALI needs torch itself
            rows.append(dali_row())
        else:
            rows.append(Row("libraries", "DALI", "not checked", "needs torch"))
    return rows


def torch_usable(rows: list[Row]) -> bool:
    return any(row.item == "torch" and row.value != "not usable" for row in rows)


def cuda_rows() -> list[Row]:
    import torch

    built = torch.version.cuda
    rows = [Row("cuda", "torch build", f"CUDA {built}" if built else "CPU only",
                "" if built else "this torch wheel has no CUDA support")]
    if not torch.cuda.is_available():
        why = "no CUDA driver or no visible device" if built else "torch has no CUDA support"
        return rows + [Row("cuda", "devices", "none", why)]
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        rows.append(Row("cuda", f"cuda:{i}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB",
                        f"compute capability {props.major}.{props.minor}"))
    bf16 = torch.cuda.is_bf16_supported()
    rows.append(Row("cuda", "bf16", "yes" if bf16 else "no",
                    "AMP uses bf16" if bf16 else "AMP uses fp16 with a grad scaler"))
    return rows


def cpu_flags(cpuinfo: str | None) -> dict[str, bool] | None:
    """The CPU_FLAGS present in /proc/cpuinfo text; None where there is no such text."""
    if not cpuinfo:
        return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return {flag: flag in present for flag in CPU_FLAGS}
    return None


def cpu_model(cpuinfo: str | None) -> str:
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def read_cpuinfo() -> str | None:
    try:
        return CPUINFO.read_text()
    except OSError:
        return None


def cpu_rows(cpuinfo: str | None) -> list[Row]:
    import torch

    from .train.precision import CPU_KIND_VARIABLE, cpu_has_native_bf16, cpu_kind_override

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [Row("cpu", "model", cpu_model(cpuinfo),
                f"{os.cpu_count()} logical cores, {usable} usable by this process"),
            Row("cpu", "torch kernels", torch.backends.cpu.get_cpu_capability(),
                "the widest vector ISA torch dispatches to")]
    flags = cpu_flags(cpuinfo)
    if flags is None:
        rows.append(Row("cpu", "flags", "unknown", f"no CPU flags in {CPUINFO} on this system"))
    else:
        rows.append(Row("cpu", "flags", ", ".join(f"{f} {'yes' if on else 'no'}"
                                                  for f, on in flags.items()), str(CPUINFO)))
    native = cpu_has_native_bf16()
    rows.append(Row("cpu", "native bf16", "yes" if native else "no",
                    "oneDNN has bf16 kernels (AVX512-BF16/AMX)" if native else
                    "bf16 is emulated: slower than fp32 here"))
    override = cpu_kind_override()
    if override is not None:
        rows.append(Row("cpu", "defaults as", "native bf16 CPU" if override else "AVX2 CPU",
                        f"{CPU_KIND_VARIABLE}={os.environ[CPU_KIND_VARIABLE]}: the defaults below "
                        "act as on that kind of CPU"))
    return rows


def as_set_by() -> str:
    from .train.precision import CPU_KIND_VARIABLE, cpu_kind_override

    return "" if cpu_kind_override() is None else f" (as set by {CPU_KIND_VARIABLE})"


def default_rows() -> list[Row]:
    """What a plain ``fastleaf train`` picks here, from the trainer's own decisions."""
    import torch

    from .config import TrainConfig
    from .loaders import resolve_backend
    from .train.precision import amp_is_fast, create_precision
    from .loaders.cpu_split import plan_split
    from .train.build import with_speed_defaults
    from .utils.device import resolve_device

    base = TrainConfig()
    device = resolve_device(base.device)
    cfg = with_speed_defaults(base, device)
    loader, loader_why = resolve_backend(cfg.loader, device)
    if device.type == "cuda":
        amp_why = "CUDA device"
    elif amp_is_fast(device):
        amp_why = "CPU with native bf16 kernels" + as_set_by()
    else:
        amp_why = "CPU without native bf16: emulated bf16 is slower than fp32" + as_set_by()
    split = plan_split(device, loader, cfg.workers, cfg.threads)
    return [
        Row("defaults", "device", str(device),
            f"--device {base.device}: " + ("CUDA available" if device.type == "cuda"
                                            else "no usable CUDA device")),
        Row("defaults", "loader", loader, loader_why),
        Row("defaults", "AMP", create_precision(cfg.amp, device, cfg.amp_dtype).name
            if cfg.amp else "off (fp32)", amp_why),
        Row("defaults", "channels_last", "on" if cfg.channels_last else "off",
            "NHWC measured faster on CPU and GPU"),
        Row("defaults", "compile", "on" if cfg.compile else "off",
            "--compile opts in: compiling costs tens of seconds"),
        Row("defaults", "workers", str(split.workers), f"loader workers, chosen with the "
            f"torch threads ({split.cores} cores here; {split.why})"),
        Row("defaults", "threads", str(split.threads or torch.get_num_threads()),
            f"torch intra-op threads ({split.why})"),
    ]


def collect(cpuinfo: str | None = None) -> list[Row]:
    """Every row of the report; ``cpuinfo`` defaults to this machine's /proc/cpuinfo."""
    rows = library_rows()
    if not torch_usable(rows):    # still worth printing: the torch row says what is wrong
        return rows + [Row("defaults", "training", "impossible here", "torch does not import")]
    return rows + cuda_rows() + cpu_rows(read_cpuinfo() if cpuinfo is None else cpuinfo) \
        + default_rows()


def render(rows: list[Row]) -> str:
    """Plain aligned text, a block per section: pastes into an issue as it is, at any width."""
    width = max(len(row.value) for row in rows)
    lines, previous = [], None
    for row in rows:
        if row.section != previous:
            lines.append(f"{'' if previous is None else chr(10)}{row.section}")
            previous = row.section
        lines.append(f"  {row.item:<15} {row.value:<{min(width, 30)}}  {row.why}".rstrip())
    return "\n".join(lines)
