"""``fastleaf doctor`` and ``--version``: what this machine has and what fastleaf picks here."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

import fastleaf
from fastleaf import doctor
from fastleaf.cli import main
from fastleaf.loaders import resolve_backend
from fastleaf.train.precision import CPU_KIND_VARIABLE, amp_is_fast, cpu_has_native_bf16

CPUINFO = """processor\t: 0
model name\t: Test CPU 9000
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16
"""


def rows_by_item(rows):
    return {(row.section, row.item): row for row in rows}


def test_cpu_flags_from_cpuinfo_and_without_it():
    assert doctor.cpu_flags(CPUINFO) == {"avx2": True, "avx512f": True, "avx512_bf16": True,
                                         "amx_bf16": False}
    assert doctor.cpu_model(CPUINFO) == "Test CPU 9000"
    assert doctor.cpu_flags(None) is None and doctor.cpu_flags("processor : 0\n") is None
    rows = rows_by_item(doctor.cpu_rows(None))
    assert rows[("cpu", "flags")].value == "unknown"
    assert rows[("cpu", "torch kernels")].value == torch.backends.cpu.get_cpu_capability()


def test_report_matches_the_trainers_own_decisions():
    rows = rows_by_item(doctor.collect(CPUINFO))
    assert rows[("libraries", "torch")].value == torch.__version__
    assert rows[("libraries", "fastleaf")].value == fastleaf.__version__
    assert rows[("cpu", "model")].value == "Test CPU 9000"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert rows[("defaults", "device")].value == str(device)
    backend, why = resolve_backend("auto", device)
    assert (rows[("defaults", "loader")].value, rows[("defaults", "loader")].why) == (backend, why)
    amp = rows[("defaults", "AMP")].value
    assert (amp != "off (fp32)") == amp_is_fast(device)
    assert rows[("cpu", "native bf16")].value == ("yes" if cpu_has_native_bf16() else "no")
    if not torch.cuda.is_available():
        assert rows[("cuda", "devices")].value == "none" and rows[("cuda", "devices")].why


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's defaults")
@pytest.mark.parametrize("kind, amp", [("bf16", "bf16"), ("avx2", "off (fp32)")])
def test_the_cpu_kind_switch_makes_the_defaults_act_as_that_kind(monkeypatch, kind, amp):
    # the suite runs once more under the kind this machine is not: the switch must reach the
    # trainer's own decision, and doctor must say that it was set
    monkeypatch.setenv(CPU_KIND_VARIABLE, kind)
    rows = rows_by_item(doctor.collect(CPUINFO))
    assert rows[("defaults", "AMP")].value == amp
    assert CPU_KIND_VARIABLE in rows[("defaults", "AMP")].why
    assert rows[("cpu", "defaults as")].why.startswith(f"{CPU_KIND_VARIABLE}={kind}")
    # the CPU's real capability is still reported as it is
    assert rows[("cpu", "native bf16")].value == ("yes" if cpu_has_native_bf16() else "no")
    from fastleaf.train.build import with_speed_defaults
    from fastleaf.config import TrainConfig

    cfg = with_speed_defaults(TrainConfig(), torch.device("cpu"))
    assert cfg.amp is (kind == "bf16") and cfg.channels_last


def test_an_unknown_cpu_kind_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv(CPU_KIND_VARIABLE, "avx9000")
    assert main(["doctor"]) == 2
    out = capsys.readouterr()
    err = (out.out + out.err).strip()
    assert "\n" not in err and f"{CPU_KIND_VARIABLE}='avx9000'" in err and "avx2" in err


def test_a_library_that_does_not_import_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)    # import now raises ImportError
    row = doctor.library_row("albumentations", "albumentations")
    assert row.value == "not usable" and "albumentations" in row.why
    row = doctor.library_row("nothing", "fastleaf_no_such_module")
    assert row.why.startswith("ModuleNotFoundError") and "fastleaf_no_such_module" in row.why


def test_without_torch_the_report_still_prints_and_says_so(monkeypatch):
    real = doctor.library_row

    def no_torch(label, module_name):
        if module_name == "torch":
            return doctor.Row("libraries", "torch", "not usable", "ImportError: libtorch.so")
        return real(label, module_name)

    monkeypatch.setattr(doctor, "library_row", no_torch)
    rows = rows_by_item(doctor.collect(CPUINFO))
    assert rows[("libraries", "torch")].why == "ImportError: libtorch.so"
    assert rows[("libraries", "DALI")].value == "not checked"
    assert rows[("defaults", "training")].why == "torch does not import"
    assert ("cuda", "devices") not in rows
    assert "ImportError: libtorch.so" in doctor.render(list(rows.values()))


def test_doctor_command_prints_every_section(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for heading in ("libraries", "cuda", "cpu", "defaults"):
        assert f"\n{heading}\n" in f"\n{out}"
    for item in ("python", "torch", "torchvision", "timm", "DALI", "albumentations", "flags",
                 "native bf16", "loader", "AMP", "channels_last", "workers"):
        assert f"  {item} " in out


def test_version_comes_from_metadata_and_falls_back_to_pyproject(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.split() == ["fastleaf", metadata.version("fastleaf")]

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    # a checkout that was never installed reads its own pyproject.toml
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(fastleaf.__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("fastleaf is not imported from a source tree")
    assert fastleaf.package_version() == tomllib.loads(pyproject.read_text())["project"]["version"]
