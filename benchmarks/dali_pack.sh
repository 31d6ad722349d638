#!/usr/bin/env bash
# Pack DALI for a Hopper card (H100/H200, sm_90) into parts small enough to carry one at a time.
#
#   bash benchmarks/dali_pack.sh               # pruned to sm_90 ELF code: benchmarks/dali-pack/sm90/
#   bash benchmarks/dali_pack.sh --unpruned    # every arch kept (the fallback): benchmarks/dali-pack/full/
#   PY_VERSIONS="3.12" XZ_LEVEL=6 PYTHON=.venv/bin/python bash benchmarks/dali_pack.sh
#
# From wheels fetched by name (`pip download --no-deps`, cached in benchmarks/dali-pack/wheels/)
# it stages what DALI's image decode and augmentation need on a CUDA 13 machine:
#   site/nvidia/dali        DALI (cu130: built for the same CUDA 13 as the device's torch) for
#                           the Python versions in PY_VERSIONS only, without its C++ headers
#   site/nvidia/nvimgcodec  nvImageCodec (cu13), its JPEG extensions only (nvJPEG, libjpeg-turbo)
#   site/nvidia/cu13/lib    libnvjpeg.so.13 (torch's CUDA 13 wheels do not ship it)
#   deps/                   DALI's Python requirements except numpy (binary ones per Python)
# The libraries find each other through DALI's and nvImageCodec's own RUNPATHs ($ORIGIN/../…),
# which this layout keeps.  Then: `strip --strip-unneeded` every shared library, prune the CUDA
# fat binaries to sm_$ARCH ELF entries (benchmarks/fatbin.py; skipped with --unpruned), tar,
# `xz -$XZ_LEVEL -T$XZ_THREADS`, split into parts of PART_MIB MiB and write SHA256SUMS.
# benchmarks/dali_unpack.sh checks and unpacks them.  Sizes and times are printed at the end
# and kept in <variant>/BUILD.txt.
#
# PY_VERSIONS defaults to the device's Python (3.12) plus this machine's, so that the
# unpack-and-import test (tests/test_dali_pack.py) can run the copy here too.
set -euo pipefail
cd "$(dirname "$0")/.."

DALI=nvidia-dali-cuda130==2.4.0
NVIMGCODEC=nvidia-nvimgcodec-cu13==0.9.0.20
NVJPEG=nvidia-nvjpeg==13.0.4.44        # CUDA 13.0, as torch 2.11+cu130: loads on its drivers
PURE_DEPS=(astunparse==1.6.3 gast==0.7.0 makefun==1.16.0 six==1.17.0 packaging==26.3)
BINARY_DEPS=(nvtx==0.2.17 optree==0.20.0 libcst==1.9.0)

PYTHON=${PYTHON:-python3}
ARCH=${ARCH:-90}
case "${1:-}" in
  "") PRUNE=1 ;;
  --unpruned) PRUNE=0 ;;
  *) echo "usage: $0 [--unpruned]" >&2; exit 2 ;;
esac
HERE_PY=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PY_VERSIONS=${PY_VERSIONS:-$(printf '%s\n' 3.12 "$HERE_PY" | sort -u | tr '\n' ' ')}
XZ_LEVEL=${XZ_LEVEL:-9}
XZ_THREADS=${XZ_THREADS:-2}
PART_MIB=${PART_MIB:-59}               # a part plus the repository stays under one call's 64 MiB
ROOT=${DALI_PACK_DIR:-benchmarks/dali-pack}
VARIANT=$([ $PRUNE = 1 ] && echo "sm$ARCH" || echo full)
WHEELS=$ROOT/wheels
STAGE=$ROOT/stage-$VARIANT
OUT=$ROOT/$VARIANT
mkdir -p "$WHEELS"
rm -rf "$STAGE" "$OUT"
mkdir -p "$STAGE/dali/site" "$STAGE/dali/deps" "$OUT"
T0=$SECONDS
mib() { du -sb "$@" | awk '{s += $1} END {printf "%.1f MiB", s / 1048576}'; }

fetch() {  # fetch PYVER SPEC...: the wheels for one Python version, from the cache when there
  local py=$1; shift
  local flags=(--no-deps --only-binary=:all: --python-version "$py" --implementation cp
               --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS")
  "$PYTHON" -m pip download -q "${flags[@]}" --no-index --find-links "$WHEELS" "$@" 2>/dev/null ||
    "$PYTHON" -m pip download -q "${flags[@]}" "$@" 2> >(grep -v 'WARNING: Location' >&2)
}
wheel() {  # wheel NAME==VERSION [PYTAG]: the cached wheel file of a distribution
  local name=${1%%==*}
  ls "$WHEELS"/"${name//-/_}-${1#*==}"-*"${2:-}"*.whl | head -n 1
}

echo "== fetch wheels (Python ${PY_VERSIONS% }; cache $WHEELS)"
fetch 3.12 "$DALI" "$NVIMGCODEC" "$NVJPEG" "${PURE_DEPS[@]}"
for v in $PY_VERSIONS; do fetch "$v" "${BINARY_DEPS[@]}"; done
ls -l "$WHEELS"
WHEELS_SIZE=$(mib "$(wheel "$DALI")" "$(wheel "$NVIMGCODEC")" "$(wheel "$NVJPEG")")

echo "== stage"
SITE=$STAGE/dali/site
DEPS=$STAGE/dali/deps
for spec in "$DALI" "$NVIMGCODEC" "$NVJPEG"; do unzip -q "$(wheel "$spec")" -d "$SITE"; done
for spec in "${PURE_DEPS[@]}"; do unzip -q -o "$(wheel "$spec")" -d "$DEPS"; done
for v in $PY_VERSIONS; do
  for spec in "${BINARY_DEPS[@]}"; do unzip -q -o "$(wheel "$spec" "-cp${v/./}-")" -d "$DEPS"; done
done
UNPACKED=$(mib "$SITE")
# one Python's extension modules each (cpython-312-…), no headers, JPEG codecs only
keep_py=$(for v in $PY_VERSIONS; do printf -- '-e cpython-%s-x86_64 ' "${v/./}"; done)
find "$SITE" "$DEPS" -name '*.cpython-*.so' | grep -v $keep_py | xargs -r rm -f
rm -rf "$SITE"/nvidia/dali/include "$SITE"/nvidia/cu13/include "$SITE"/nvidia/nvimgcodec/include \
  "$SITE"/nvidia/nvimgcodec/tools "$DEPS"/libcst/tests
find "$SITE"/nvidia/nvimgcodec/extensions -type f ! -name 'libnvjpeg_ext.so*' \
  ! -name 'libjpeg_turbo_ext.so*' -delete
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
KEPT=$(mib "$STAGE")

echo "== strip"
find "$STAGE" -type f \( -name '*.so' -o -name '*.so.*' \) -print0 | xargs -0 strip --strip-unneeded
STRIPPED=$(mib "$STAGE")

if [ $PRUNE = 1 ]; then
  echo "== prune fat binaries to sm_$ARCH"
  find "$SITE" -type f \( -name '*.so' -o -name '*.so.*' \) -print0 |
    xargs -0 "$PYTHON" benchmarks/fatbin.py prune --arch "$ARCH" | grep -v ' dropped 0,' || true
fi
{
  echo "variant: $VARIANT ($([ $PRUNE = 1 ] && echo "fat binaries pruned to sm_$ARCH ELF" || echo "every arch kept"))"
  echo "python: $PY_VERSIONS"
  echo "wheels: $DALI $NVIMGCODEC $NVJPEG ${PURE_DEPS[*]} ${BINARY_DEPS[*]}"
  echo "packed: $(date -u +%FT%TZ)"
} >"$STAGE/dali/MANIFEST.txt"

echo "== tar | xz -$XZ_LEVEL -T$XZ_THREADS"
T1=$SECONDS
NAME=dali-$VARIANT.tar.xz
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner -cf - dali |
  xz "-$XZ_LEVEL" "-T$XZ_THREADS" >"$OUT/$NAME"
XZ_S=$((SECONDS - T1))
ARCHIVE=$(mib "$OUT/$NAME")
(cd "$OUT" && split -b "${PART_MIB}M" -d -a 2 "$NAME" "$NAME.part-" && rm "$NAME" &&
  sha256sum "$NAME".part-* >SHA256SUMS)
rm -rf "$STAGE"

{
  echo "DALI for sm_$ARCH, variant $VARIANT, Python $PY_VERSIONS"
  echo "wheels (DALI + nvImageCodec + nvJPEG): $WHEELS_SIZE; unpacked site: $UNPACKED"
  echo "kept: $KEPT; stripped: $STRIPPED (pruning zero-fills in place: same size on disk)"
  echo "xz -$XZ_LEVEL -T$XZ_THREADS: $ARCHIVE in $XZ_S s; total $((SECONDS - T0)) s"
  echo "parts (${PART_MIB} MiB each at most):"
  (cd "$OUT" && ls -l "$NAME".part-* | awk '{printf "  %s %d B\n", $NF, $5}')
} | tee "$OUT/BUILD.txt"
echo "carry each part with SHA256SUMS; unpack: bash benchmarks/dali_unpack.sh $OUT DEST"
