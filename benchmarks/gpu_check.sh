#!/usr/bin/env bash
# fastleaf device check: every CUDA path once, with figures, within 9 minutes on one H200.
#
#   bash benchmarks/gpu_check.sh                    # from the repo root, on a CUDA machine
#   DEVICE=cpu bash benchmarks/gpu_check.sh         # dry run of the same steps on the CPU
#   OUT=/tmp/check PYTHON=python3 bash benchmarks/gpu_check.sh
#   DALI_PARTS=/tmp/dali-parts bash benchmarks/gpu_check.sh   # DALI carried in parts, unpacked first
#
# Needs only torch, torchvision, timm, pytest, pyyaml, safetensors, rich, pandas, scikit-learn,
# tensorboard, matplotlib: DALI and albumentations are optional (their cases and steps are
# skipped with the reason).  DALI_PARTS names a folder holding the parts benchmarks/dali_pack.sh
# wrote (SHA256SUMS + dali-*.tar.xz.part-NN): they are checked and unpacked into DALI_DEST
# (default /tmp/fastleaf-dali) and put first on the paths; DALI_DEST alone reuses an earlier
# unpack.  Writes into $OUT (default benchmarks/gpu-check-logs/): one log per step, steps.tsv,
# versions.json, bench-*.json, dali-*.json, syncs.json, summary.json and summary.md (the latter
# is the draft of benchmarks/results/gpu-<card>.md).  Exit status: the number of failed steps.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" COLUMNS=160 PYTHONUNBUFFERED=1
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-benchmarks/gpu-check-logs}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT"/runs "$OUT"/data "$OUT"/*.log "$OUT"/steps.tsv "$OUT"/bench-*.json "$OUT"/dali-*.json
START=$SECONDS

# sizes and the time budget (seconds per step); the CPU dry run shrinks the work, not the steps
if [ "$DEVICE" = cpu ]; then
  # the paper CNN at 112 px stands in for the GPU models: the dry run checks the plumbing
  IMG=112; CLASSES=4; PER_CLASS=10; BATCH=8; EPOCH_MODEL=cnn; COMPILE_MODEL=cnn
  FP16="--no-amp"; BF16="--no-amp"; CACHE=ram; BENCH_BATCHES="4 2"; BENCH_IMG=112
  BENCH_MODELS=cnn; BENCH_STEPS=(--steps 1 --warmup 1 --repeats 1 --max-seconds 2)
  PROBE=(--model cnn --img-size 112 --batch-size 4 --batches 1 --workers 1); WORKERS=(--workers 1)
  DALI_BATCHES=3; DALI_THREADS=1
else
  # 640 train / 160 val images at batch 80: no ragged batch anywhere, so compile traces once
  IMG=224; CLASSES=10; PER_CLASS=80; BATCH=80; EPOCH_MODEL=resnet18; COMPILE_MODEL=resnet18
  FP16="--amp --amp-dtype fp16"; BF16="--amp --amp-dtype bf16"; CACHE=gpu
  BENCH_BATCHES="256 50"; BENCH_IMG=224; BENCH_MODELS=cnn,vgg16,resnet18,deit_tiny
  BENCH_STEPS=(--steps 6 --warmup 2 --repeats 2 --max-seconds 3); PROBE=(); WORKERS=()
  DALI_BATCHES=20; DALI_THREADS=8
fi
# seconds per step.  On an H200 the check without DALI took 256 s; a process there needs ~6 s
# to import torch and reach the GPU and ~15 s to train one tiny epoch, so the budgets are about
# twice what each step took (the DALI steps' and the larger bench's are estimates).  Their sum
# is more than DEADLINE: a step that would start past it is skipped (and one that would run
# past it is cut short), so the whole check ends within DEADLINE + the summary whatever hangs.
declare -A BUDGET=([dali-unpack]=30 [versions]=15 [synth]=15 [pytest-gpu]=120
  [train-torchvision-bf16]=40 [train-cache-bf16]=40 [train-cache-fp16]=40 [train-compile]=90
  [tta-predict]=30 [dali-presets]=60 [dali-decode]=45 [dali-parity]=30 [train-dali]=60
  [bench-b${BENCH_BATCHES% *}]=100 [bench-b${BENCH_BATCHES#* }]=60 [sync-probe]=40 [sync-locate]=40
  [summary]=5)
DEADLINE=${DEADLINE:-540}
# the CPU dry run may take longer (a shared 2-core machine starts Python in seconds, not ms)
SCALE=${BUDGET_SCALE:-$([ "$DEVICE" = cpu ] && echo 10 || echo 1)}
for k in "${!BUDGET[@]}"; do BUDGET[$k]=$((BUDGET[$k] * SCALE)); done
DEADLINE=$((DEADLINE * SCALE))
FAILED=0
CURRENT=
# timeout runs each step in its own process group: pass an interrupt on to it
trap '[ -n "$CURRENT" ] && kill -TERM -- -"$CURRENT" 2>/dev/null; echo interrupted; exit 130' INT TERM

skip() {  # skip NAME REASON: one line in steps.tsv; a skipped step is not a failed one
  local why=${2//$'\t'/ }
  printf '== %-24s skipped: %s\n' "$1" "$why"
  printf '%s\tskip: %s\t\t0\t%s\n' "$1" "$why" "${BUDGET[$1]}" >>"$OUT/steps.tsv"
}

step() {  # step NAME CMD... : runs under its budget, logs to $OUT/NAME.log, one line in steps.tsv
  local name=$1 t0=$SECONDS rc budget=${BUDGET[$1]} left=$((DEADLINE - (SECONDS - START))); shift
  if [ "$name" != summary ]; then
    [ "$left" -ge 10 ] || { skip "$name" "out of time (DEADLINE ${DEADLINE}s)"; return 0; }
    [ "$budget" -le "$left" ] || budget=$left
  fi
  printf '== %-24s (budget %3ss) %s\n' "$name" "$budget" "$*"
  timeout --kill-after=10 "$budget" "$@" <&0 >"$OUT/$name.log" 2>&1 &
  CURRENT=$!
  wait "$CURRENT"
  rc=$?
  CURRENT=
  local took=$((SECONDS - t0)) status=pass
  [ $rc = 0 ] || { status=fail; FAILED=$((FAILED + 1)); }
  [ $rc = 124 ] || [ $rc = 137 ] && status=timeout
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$took" "$budget" >>"$OUT/steps.tsv"
  printf '   %-7s %4ss  (%s)\n' "$status" "$took" "$OUT/$name.log"
  [ $rc = 0 ] || tail -n 15 "$OUT/$name.log" | sed 's/^/   | /'
  return 0
}

DALI_ENV=
if [ -n "${DALI_PARTS:-}" ]; then
  DALI_DEST=${DALI_DEST:-/tmp/fastleaf-dali}
  step dali-unpack env PYTHON="$PY" bash benchmarks/dali_unpack.sh "$DALI_PARTS" "$DALI_DEST"
  DALI_ENV=$DALI_DEST/dali/env.sh
elif [ -n "${DALI_DEST:-}" ]; then
  DALI_ENV=$DALI_DEST/dali/env.sh
fi
# shellcheck disable=SC1090  # written by dali_unpack.sh
[ -n "$DALI_ENV" ] && [ -f "$DALI_ENV" ] && source "$DALI_ENV"

step versions "$PY" - "$OUT/versions.json" <<'EOF'
import json, platform, subprocess, sys
from importlib import metadata
import torch
def ver(*names):
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
cuda = torch.cuda.is_available()
driver = None
if cuda:
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.split("\n")[0].strip()
    except Exception as err:
        driver = f"unknown ({type(err).__name__})"
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "gpus": torch.cuda.device_count(),
        "driver": driver, "bf16": cuda and torch.cuda.is_bf16_supported(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": len(__import__("os").sched_getaffinity(0)),
        **{n: ver(n) for n in ("torchvision", "timm", "numpy", "pillow", "opencv-python", "opencv-python-headless",
                               "albumentations", "scikit-learn", "pandas", "rich", "pytest")},
        "dali": ver("nvidia-dali-cuda130", "nvidia-dali-cuda120", "nvidia-dali-cuda110")}
try:    # where DALI is imported from: the machine's own or a carried copy (DALI_PARTS)
    import nvidia.dali
    info["dali_path"] = nvidia.dali.__file__
except Exception as err:
    info["dali_path"] = f"not importable: {type(err).__name__}: {err}"
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(json.dumps(info, indent=1))
EOF
if [ "$DEVICE" != cpu ] && ! grep -q '"gpu": "' "$OUT/versions.json" 2>/dev/null; then
  echo "no CUDA device visible: run with DEVICE=cpu for a dry run"; exit 1
fi

D="$OUT/data"
step synth "$PY" -m fastleaf synth --out "$D" --classes "$CLASSES" --train-per-class "$PER_CLASS" \
  --test-per-class 4 --img-size "$IMG"

if [ "$DEVICE" = cpu ]; then   # no CUDA: the gpu tests are collected and skipped
  step pytest-gpu "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py tests/test_dali.py tests/test_cache.py
else
  # compile is the train-compile step's
  step pytest-gpu "$PY" -m pytest -q -p no:cacheprovider --durations=8 -m gpu tests -k "not compile_on_cuda"
fi

T=("$PY" -m fastleaf train --data "$D" --img-size "$IMG" --batch-size "$BATCH" --epochs 1 --device "$DEVICE"
   --no-progress --no-tensorboard --channels-last --seed 0 "${WORKERS[@]}")
R="$OUT/runs"
step train-torchvision-bf16 "${T[@]}" --model "$EPOCH_MODEL" --loader workers $BF16 --out "$R/torchvision-bf16"
step train-cache-bf16 "${T[@]}" --model "$EPOCH_MODEL" --loader "cache-$CACHE" $BF16 --out "$R/cache-bf16"
step train-cache-fp16 "${T[@]}" --model "$EPOCH_MODEL" --loader "cache-$CACHE" $FP16 --out "$R/cache-fp16"
# two epochs: the first compiles, the second is the steady state
step train-compile "${T[@]}" --model "$COMPILE_MODEL" --loader "cache-$CACHE" $BF16 --compile --epochs 2 \
  --out "$R/compile"
step tta-predict "$PY" -m fastleaf tta-predict --data "$D" --checkpoint "$R/torchvision-bf16" \
  --device "$DEVICE" --loader workers --tta flips --batch-size "$BATCH" "${WORKERS[@]}" \
  --out "$R/submission-flips.csv"

# DALI: each augmentation preset through its pipeline, the decoder alone, the GPU decode's
# distance from the CPU one, and two training epochs; on a CPU its CPU-only pipeline runs
if DALI_ERR=$("$PY" -c 'import nvidia.dali' 2>&1); then DALI_WHY=; else DALI_WHY=$(tail -n 1 <<<"$DALI_ERR"); fi
DALI_ARGS=(--data "$D" --device "$DEVICE" --img-size "$IMG" --batch-size "$BATCH" --workers "$DALI_THREADS")
if [ -n "$DALI_WHY" ]; then
  for s in dali-presets dali-decode dali-parity train-dali; do skip "$s" "DALI not importable: $DALI_WHY"; done
else
  step dali-presets "$PY" benchmarks/dali_check.py presets "${DALI_ARGS[@]}" --batches "$DALI_BATCHES" \
    --json "$OUT/dali-presets.json"
  step dali-decode "$PY" benchmarks/dali_check.py decode "${DALI_ARGS[@]}" --batches "$DALI_BATCHES" \
    --loads 0,0.65,1 --json "$OUT/dali-decode.json"
  if [ "$DEVICE" = cpu ]; then
    skip dali-parity "needs CUDA: compares the mixed (nvJPEG) decode with the CPU one"
  else
    step dali-parity "$PY" benchmarks/dali_check.py parity "${DALI_ARGS[@]}" --json "$OUT/dali-parity.json"
  fi
  step train-dali "${T[@]}" --model "$EPOCH_MODEL" --loader dali $BF16 --epochs 2 --out "$R/dali"
fi

LOADERS=workers,cache-gpu,synthetic
[ "$DEVICE" = cpu ] && LOADERS=workers,cache-ram,synthetic
[ -z "$DALI_WHY" ] && LOADERS=dali,$LOADERS
for b in $BENCH_BATCHES; do
  step "bench-b$b" "$PY" -m fastleaf bench --data "$D" --models "$BENCH_MODELS" --modes train,infer \
    --loaders "$LOADERS" --batch-size "$b" --img-size "$BENCH_IMG" --device "$DEVICE" "${BENCH_STEPS[@]}" \
    "${WORKERS[@]}" --json "$OUT/bench-b$b.json"
done

step sync-probe "$PY" benchmarks/sync_probe.py --data "$D" --device "$DEVICE" "${PROBE[@]}" \
  --json "$OUT/syncs.json"
# a loader that syncs: where its first sync is really made (the log has the traceback)
if [ "$DEVICE" != cpu ] && grep -Eq '"per_batch": (0\.0*[1-9]|[1-9])' "$OUT/syncs.json" 2>/dev/null; then
  step sync-locate "$PY" benchmarks/sync_probe.py --data "$D" --device "$DEVICE" --locate \
    --json "$OUT/syncs-locate.json"
fi

step summary "$PY" benchmarks/gpu_check_summary.py "$OUT"
echo "total $((SECONDS - START)) s; failed steps: $FAILED; summary: $OUT/summary.md"
[ -f "$OUT/summary.md" ] && cat "$OUT/summary.md"
exit "$FAILED"
