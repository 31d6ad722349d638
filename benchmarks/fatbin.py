"""List or prune the CUDA fat binaries embedded in shared libraries (used by ``dali_pack.sh``).

    python benchmarks/fatbin.py list LIB.so ...           # entries per kind and SM arch
    python benchmarks/fatbin.py prune --arch 90 LIB.so ... # keep only sm_90 ELF entries, in place

A library built for many GPUs carries, in its ``.nv_fatbin`` section, one fat binary per
compilation unit, each holding an ELF (SASS) or PTX entry per architecture.  A Hopper card
(H100/H200, sm_90) loads only the sm_90 ELF entries, so the others are dead weight when the
library is carried to one.  Pruning rewrites each fat binary in place: the kept entries move to
its front, its size field shrinks to match, and the freed bytes are zeroed, so every offset in
the file stays valid and the zeros cost nothing once compressed.  A fat binary with no sm_90
ELF entry is left whole (the driver may still JIT its PTX).

Layouts (little-endian), as read from CUDA's ``fatbinary_section.h`` and checked on DALI's
libraries: fat binary header ``magic u32 (0xBA55ED50), version u16, header_size u16,
fat_size u64``; entry header ``kind u16 (1 PTX, 2 ELF), version u16, header_size u32,
payload_size u64``, with the SM arch as a u32 at offset 28.
"""
from __future__ import annotations

import argparse
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0xBA55ED50
FATBIN_SECTIONS = (".nv_fatbin", "__nv_relfatbin")
KINDS = {1: "PTX", 2: "ELF"}
SHT_NOBITS = 8


@dataclass(frozen=True)
class Entry:
    kind: int
    arch: int
    start: int      # offset in the section
    size: int       # header + payload


@dataclass(frozen=True)
class FatBinary:
    start: int      # offset of the fat binary header in the section
    header_size: int
    fat_size: int
    entries: tuple[Entry, ...]


def fatbin_sections(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) in the file of each fat-binary section of an ELF64 image."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not an ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    found = []
    for name_off, sh_type, _flags, _addr, offset, size in headers:
        name = data[names_at + name_off:data.index(b"\0", names_at + name_off)].decode()
        if name in FATBIN_SECTIONS and sh_type != SHT_NOBITS:
            found.append((offset, size))
    return found


def parse_fatbins(section: bytes | bytearray) -> list[FatBinary]:
    """Every fat binary in a section; padding between them is skipped by searching the magic."""
    fatbins, pos, magic = [], 0, struct.pack("<I", MAGIC)
    while pos + 16 <= len(section):
        if section[pos:pos + 4] != magic:
            pos = section.find(magic, pos + 1)
            if pos < 0:
                break
            continue
        _, _, header_size, fat_size = struct.unpack_from("<IHHQ", section, pos)
        start, end = pos + header_size, pos + header_size + fat_size
        entries, e = [], start
        while e + 64 <= end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", section, e)
            if entry_header == 0:
                break
            arch, = struct.unpack_from("<I", section, e + 28)
            entries.append(Entry(kind, arch, e, entry_header + payload))
            e += entry_header + payload
        fatbins.append(FatBinary(pos, header_size, fat_size, tuple(entries)))
        pos = end
    return fatbins


def prune_section(section: bytearray, arch: int) -> Counter:
    """Keep only ``arch``'s ELF entries in each fat binary of ``section`` (in place)."""
    counts = Counter()
    for fb in parse_fatbins(section):
        keep = [e for e in fb.entries if e.kind == 2 and e.arch == arch]
        if not keep:
            counts["untouched"] += 1
            continue
        blob = b"".join(bytes(section[e.start:e.start + e.size]) for e in keep)
        body = fb.start + fb.header_size
        section[body:body + fb.fat_size] = blob + bytes(fb.fat_size - len(blob))
        struct.pack_into("<Q", section, fb.start + 8, len(blob))
        counts["kept"] += len(keep)
        counts["dropped"] += len(fb.entries) - len(keep)
    return counts


def prune_file(path: Path, arch: int) -> Counter:
    data = bytearray(path.read_bytes())
    counts = Counter()
    for offset, size in fatbin_sections(data):
        section = data[offset:offset + size]
        counts += prune_section(section, arch)
        data[offset:offset + size] = section
    if counts["dropped"]:
        path.write_bytes(data)
    return counts


def describe(path: Path) -> list[str]:
    data = path.read_bytes()
    sizes, counts = Counter(), Counter()
    for offset, size in fatbin_sections(data):
        for fb in parse_fatbins(data[offset:offset + size]):
            for e in fb.entries:
                key = (KINDS.get(e.kind, f"kind{e.kind}"), e.arch)
                sizes[key] += e.size
                counts[key] += 1
    if not sizes:
        return [f"{path}: no fat binary"]
    lines = [f"{path}: {sum(sizes.values()) / 2**20:.1f} MiB of entries"]
    lines += [f"   {kind} sm_{arch}: {size / 2**20:.1f} MiB in {counts[kind, arch]} entries"
              for (kind, arch), size in sizes.most_common()]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list").add_argument("libs", nargs="+", type=Path)
    prune = sub.add_parser("prune")
    prune.add_argument("--arch", type=int, required=True, help="SM arch to keep, e.g. 90 for sm_90")
    prune.add_argument("libs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for lib in args.libs:
        if args.command == "list":
            print("\n".join(describe(lib)))
        else:
            c = prune_file(lib, args.arch)
            print(f"{lib}: kept {c['kept']} sm_{args.arch} ELF entries, dropped {c['dropped']}, "
                  f"{c['untouched']} fat binaries without one left whole")
    return 0


if __name__ == "__main__":
    sys.exit(main())
