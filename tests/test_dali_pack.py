"""DALI carried to the device: fat-binary pruning (benchmarks/fatbin.py) and the packed copy.

The slow test unpacks the parts that ``benchmarks/dali_pack.sh`` wrote (skipped in a checkout
where nobody packed them) and decodes a JPEG with a CPU pipeline in a Python that cannot see
any installed DALI: only the unpacked folder and a few of this machine's modules (numpy,
typing_extensions, yaml), as on the device, where torch brings those.
"""
from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# a script, not a package module: loaded by path (registered first, for its dataclasses)
spec = importlib.util.spec_from_file_location("benchmarks_fatbin", REPO / "benchmarks" / "fatbin.py")
fatbin = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fatbin)

PACKS = [Path(os.environ["FASTLEAF_DALI_PARTS"])] if os.environ.get("FASTLEAF_DALI_PARTS") else \
    [REPO / "benchmarks" / "dali-pack" / v for v in ("sm90", "full")]


def entry(kind: int, arch: int, payload: bytes) -> bytes:
    header = bytearray(64)
    struct.pack_into("<HHIQ", header, 0, kind, 1, 64, len(payload))
    struct.pack_into("<I", header, 28, arch)
    return bytes(header) + payload


def fat_binary(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", fatbin.MAGIC, 1, 16, len(body)) + body


def elf_with_section(name: str, content: bytes) -> bytes:
    """A minimal ELF64 image: the header, a string table, one section and the section headers."""
    names = b"\0" + name.encode() + b"\0.shstrtab\0"
    shoff = 64 + len(names) + len(content)
    header = bytearray(64)
    header[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 2)

    def section(name_off, offset, size, sh_type=1):
        return struct.pack("<IIQQQQIIQQ", name_off, sh_type, 0, 0, offset, size, 0, 0, 1, 0)
    return (bytes(header) + names + content + bytes(64)
            + section(1, 64 + len(names), len(content))
            + section(len(name) + 2, 64, len(names), sh_type=3))


def test_prune_keeps_only_the_arch_elf_entries_and_every_offset(tmp_path):
    sm90 = entry(2, 90, b"H" * 40)
    first = fat_binary(entry(2, 80, b"A" * 24), sm90, entry(1, 120, b"P" * 56))
    ptx_only = fat_binary(entry(1, 90, b"Q" * 32))
    lib = tmp_path / "lib.so"
    lib.write_bytes(elf_with_section(".nv_fatbin", first + bytes(8) + ptx_only))
    size = lib.stat().st_size

    counts = fatbin.prune_file(lib, 90)

    assert (counts["kept"], counts["dropped"], counts["untouched"]) == (1, 2, 1)
    data = lib.read_bytes()
    assert len(data) == size          # in place: nothing after the section moves
    (offset, length), = fatbin.fatbin_sections(data)
    section = data[offset:offset + length]
    a, b = fatbin.parse_fatbins(section)
    assert [(e.kind, e.arch) for e in a.entries] == [(2, 90)]
    assert a.fat_size == len(sm90)
    assert section[a.start + 16:a.start + 16 + len(sm90)] == sm90
    assert not any(section[a.start + 16 + len(sm90):len(first)])     # dropped entries zeroed
    assert b.start == len(first) + 8 and [(e.kind, e.arch) for e in b.entries] == [(1, 90)]


def test_prune_without_the_arch_leaves_the_file_unchanged(tmp_path):
    lib = tmp_path / "lib.so"
    original = elf_with_section(".nv_fatbin", fat_binary(entry(2, 80, b"A" * 24), entry(1, 80, b"P" * 8)))
    lib.write_bytes(original)
    assert fatbin.prune_file(lib, 90)["untouched"] == 1
    assert lib.read_bytes() == original


def fake_parts(tmp_path: Path) -> Path:
    """A pack laid out as dali_pack.sh writes one, of a few small files, in two parts."""
    tree = tmp_path / "tree" / "dali"
    (tree / "site" / "nvidia").mkdir(parents=True)
    (tree / "deps" / "fastleaf_missing_dep").mkdir(parents=True)
    (tree / "deps" / "json").mkdir()        # the stdlib has it: the machine's copy wins
    (tree / "MANIFEST.txt").write_text("variant: test\n")
    (tree / "site" / "nvidia" / "blob").write_bytes(np.random.default_rng(0).bytes(3000))
    parts = tmp_path / "parts"
    parts.mkdir()
    script = (f"tar -C {tree.parent} -cf - dali | xz -0 > {parts}/p.tar.xz && cd {parts} && "
              "split -b 1000 -d -a 2 p.tar.xz p.tar.xz.part- && rm p.tar.xz && "
              "sha256sum p.tar.xz.part-* > SHA256SUMS")
    subprocess.run(["bash", "-c", script], check=True)
    return parts


def unpack(parts: Path, dest: Path, *extra: str):
    return subprocess.run(["bash", str(REPO / "benchmarks" / "dali_unpack.sh"), str(parts), str(dest),
                           *extra], capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})


def test_unpack_joins_the_parts_and_keeps_only_missing_deps(tmp_path):
    parts = fake_parts(tmp_path)
    assert len(list(parts.glob("*.part-*"))) > 1
    done = unpack(parts, tmp_path / "dest")
    assert done.returncode == 0, done.stderr
    dali = tmp_path / "dest" / "dali"
    blob = (tmp_path / "tree" / "dali" / "site" / "nvidia" / "blob").read_bytes()
    assert (dali / "site" / "nvidia" / "blob").read_bytes() == blob
    assert sorted(p.name for p in (dali / "deps").iterdir()) == ["fastleaf_missing_dep"]
    env = (dali / "env.sh").read_text()
    assert f'PYTHONPATH="{dali}/site:{dali}/deps' in env
    assert f'LD_LIBRARY_PATH="{dali}/site/nvidia/cu13/lib' in env


def test_unpack_names_a_damaged_part_and_unpacks_nothing(tmp_path):
    parts = fake_parts(tmp_path)
    damaged = sorted(parts.glob("*.part-*"))[1]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    done = unpack(parts, tmp_path / "dest")
    assert done.returncode == 1
    assert damaged.name in done.stdout + done.stderr
    assert not (tmp_path / "dest" / "dali").exists()


# the copy's own Python: its path is given, nothing else is searched (-I -S: no site-packages)
DECODE = r"""
import json, sys
sys.path[:0] = sys.argv[1:4]
import numpy as np
import nvidia.dali
from nvidia.dali import fn, pipeline_def

@pipeline_def(batch_size=1, num_threads=1, device_id=None)
def decode():
    jpegs, _ = fn.readers.file(files=[sys.argv[4]])
    return fn.decoders.image(jpegs, device="cpu")

pipe = decode()
pipe.build()
image, = pipe.run()
np.save(sys.argv[5], np.asarray(image[0]))
libs = sorted({line.split()[-1] for line in open("/proc/self/maps")
               if "libdali" in line or "nvimgcodec" in line})
print(json.dumps({"dali": nvidia.dali.__file__, "version": nvidia.dali.__version__, "libs": libs}))
"""


def machine_modules(folder: Path) -> Path:
    """Links to the few modules the device's torch install brings and the copy relies on."""
    import numpy
    import typing_extensions
    import yaml

    folder.mkdir()
    sources = [Path(numpy.__file__).parent, Path(typing_extensions.__file__), Path(yaml.__file__).parent]
    sources += [p for p in Path(numpy.__file__).parents[1].glob("numpy.libs")]
    sources += [p for p in Path(yaml.__file__).parents[1].glob("_yaml")]
    for src in sources:
        (folder / src.name).symlink_to(src)
    return folder


@pytest.mark.slow
def test_packed_dali_decodes_a_jpeg_from_its_own_copy(tmp_path):
    parts = next((p for p in PACKS if (p / "SHA256SUMS").is_file()), None)
    if parts is None:
        pytest.skip("no DALI parts packed here (bash benchmarks/dali_pack.sh)")
    dest = tmp_path / "unpacked"
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "dali_unpack.sh"), str(parts), str(dest),
                           "--keep-deps"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    site, deps = dest / "dali" / "site", dest / "dali" / "deps"
    tag = "cpython-%d%d-" % sys.version_info[:2]
    if not list((site / "nvidia" / "dali").glob(f"backend_impl.{tag}*.so")):
        pytest.skip(f"the parts in {parts} were packed for other Python versions (PY_VERSIONS)")

    from PIL import Image
    rng = np.random.default_rng(0)
    jpeg = tmp_path / "leaf.jpg"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(jpeg, quality=90)
    host = machine_modules(tmp_path / "machine")
    out = tmp_path / "decoded.npy"
    run = subprocess.run([sys.executable, "-I", "-S", "-c", DECODE, str(site), str(deps), str(host),
                          str(jpeg), str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert Path(report["dali"]).is_relative_to(site)
    assert report["libs"] and all(Path(lib).is_relative_to(site) for lib in report["libs"]), report["libs"]
    assert any("libdali_operators" in lib for lib in report["libs"])
    decoded = np.load(out).astype(int)
    expected = np.asarray(Image.open(jpeg).convert("RGB")).astype(int)
    assert decoded.shape == expected.shape
    # both are libjpeg-turbo's decode; only a different build's rounding could differ
    assert np.abs(decoded - expected).max() <= 1
