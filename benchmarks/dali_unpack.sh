#!/usr/bin/env bash
# Check and unpack the parts written by benchmarks/dali_pack.sh; print the environment to use.
#
#   bash benchmarks/dali_unpack.sh PARTS_DIR DEST [--keep-deps]
#   source DEST/dali/env.sh                     # then `import nvidia.dali` uses the copy
#
# PARTS_DIR holds dali-<variant>.tar.xz.part-NN and SHA256SUMS (the parts may have been copied
# there one call at a time).  Every part is checked before anything is unpacked; a missing or
# damaged part is named and the exit status is 1.  DEST/dali/env.sh puts site/ (DALI,
# nvImageCodec, libnvjpeg) and deps/ (DALI's Python requirements) ahead on PYTHONPATH.  So that
# the copy never shadows a package the machine already has, each top-level module in deps/ that
# $PYTHON can already import is removed first (--keep-deps keeps them all: the copy then needs
# nothing from the machine but numpy, typing_extensions and pyyaml).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PARTS_DIR DEST [--keep-deps]" >&2; exit 2; }
PARTS=$1
DEST=$2
KEEP_DEPS=$([ "${3:-}" = --keep-deps ] && echo 1 || echo 0)
PYTHON=${PYTHON:-python3}
[ -f "$PARTS/SHA256SUMS" ] || { echo "no $PARTS/SHA256SUMS: nothing packed there" >&2; exit 1; }

T0=$SECONDS
(cd "$PARTS" && sha256sum --check --quiet SHA256SUMS) ||
  { echo "DALI parts in $PARTS are missing or damaged (see above): copy them again" >&2; exit 1; }
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
rm -rf "$DEST/dali"
unxz() {  # a machine without xz-utils still has Python's lzma
  if command -v xz >/dev/null; then xz -dc; else
    "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'
  fi
}
# the parts in SHA256SUMS order are the archive, byte for byte
awk '{print $2}' "$PARTS/SHA256SUMS" | (cd "$PARTS" && xargs cat) | unxz | tar -C "$DEST" -xf -

if [ "$KEEP_DEPS" = 0 ]; then
  names=$(cd "$DEST/dali/deps" && ls | grep -v -e '\.dist-info$' -e '^__pycache__$' | sed 's/\.py$//')
  # shellcheck disable=SC2086  # one name per word
  have=$("$PYTHON" -c 'import importlib.util, sys
print(" ".join(n for n in sys.argv[1:] if importlib.util.find_spec(n)))' $names)
  for n in $have; do rm -rf "$DEST/dali/deps/$n" "$DEST/dali/deps/$n.py" "$DEST"/dali/deps/"$n"-*.dist-info; done
  [ -z "$have" ] || echo "the machine's own copy kept for: $have"
fi

cat >"$DEST/dali/env.sh" <<EOF
export PYTHONPATH="$DEST/dali/site:$DEST/dali/deps\${PYTHONPATH:+:\$PYTHONPATH}"
export LD_LIBRARY_PATH="$DEST/dali/site/nvidia/cu13/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
echo "unpacked $(du -sh "$DEST/dali" | cut -f1) in $((SECONDS - T0)) s:"
sed 's/^/  /' "$DEST/dali/MANIFEST.txt"
echo "use it with:"
echo "  source $DEST/dali/env.sh"
