"""One AMP path, chosen once: an autocast context (or a no-op) and a grad scaler only for fp16."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from ..errors import UsageError
from ..vocab import AMP_DTYPES


@dataclass
class Precision:
    enabled: bool
    dtype: torch.dtype
    device_type: str
    scaler: torch.amp.GradScaler | None

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32") \
            if self.enabled else "fp32"


# Act as on another kind of CPU: ``bf16`` (native bf16 kernels: AVX512-BF16/AMX) or ``avx2``
# (bf16 emulated). The defaults differ between the two kinds, so the test suite runs once more
# under the kind this machine is not; bf16 arithmetic runs (slowly) on AVX2 too, so a run under
# ``bf16`` is a real bf16 run, not a mock.
CPU_KIND_VARIABLE = "FASTLEAF_CPU_KIND"
CPU_KINDS = {"bf16": True, "avx2": False}


def cpu_kind_override() -> bool | None:
    """Native bf16 as ``FASTLEAF_CPU_KIND`` says (None when unset)."""
    value = os.environ.get(CPU_KIND_VARIABLE, "").strip().lower()
    if not value:
        return None
    if value not in CPU_KINDS:
        raise UsageError(f"{CPU_KIND_VARIABLE}={value!r}: use one of "
                         f"{', '.join(CPU_KINDS)} (or unset it for this CPU's own kind)")
    return CPU_KINDS[value]


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_is_fast(device: torch.device) -> bool:
    """Whether reduced-precision autocast speeds ``device`` up: the one decision point of the
    CPU-dependent defaults.

    CUDA: yes.  CPU: only when oneDNN has native bf16 kernels (AVX512-BF16 / AMX); on AVX2-only
    CPUs bf16 is emulated and measured several times slower than fp32.  ``FASTLEAF_CPU_KIND``
    (``bf16`` or ``avx2``) makes the CPU answer as that kind would.
    """
    if device.type == "cuda":
        return True
    override = cpu_kind_override()
    return cpu_has_native_bf16() if override is None else override


def default_speed_flags(device: torch.device) -> tuple[bool, bool]:
    """(amp, channels_last) measured fastest on ``device`` (benchmarks/README.md).

    channels_last always; autocast on CUDA and on CPUs with native bf16 kernels only.
    """
    return amp_is_fast(device), True


def create_precision(amp: bool, device: torch.device, amp_dtype: str = "auto") -> Precision:
    """``amp_dtype``: auto (bf16 on CPU and on GPUs that have it, else fp16), bf16 or fp16."""
    if not amp:
        return Precision(False, torch.float32, device.type, None)
    if amp_dtype == "auto":
        bf16_ok = device.type != "cuda" or torch.cuda.is_bf16_supported()
        amp_dtype = "bf16" if bf16_ok else "fp16"
    if amp_dtype not in AMP_DTYPES:
        raise UsageError(f"amp dtype must be one of {', '.join(AMP_DTYPES)}, got {amp_dtype!r}")
    dtype = torch.bfloat16 if amp_dtype == "bf16" else torch.float16
    if device.type == "cpu" and dtype == torch.float16:
        raise UsageError("fp16 autocast is for CUDA; use bf16 on the CPU")
    # bf16 keeps fp32's exponent range, so only fp16 needs loss scaling
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    return Precision(True, dtype, device.type, scaler)


def loader_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    """The image dtype loaders hand over: the autocast dtype on CUDA (half the bytes, and the
    first convolution casts to it anyway), float32 elsewhere."""
    if precision.enabled and device.type == "cuda":
        return precision.dtype
    return torch.float32
