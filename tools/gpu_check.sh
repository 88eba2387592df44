#!/usr/bin/env bash
# CUDA check of the `full` code paths: every family's published-size model trains a few steps on the GPU
# (mixed precision and channels-last as in a real run; mnist5k stands in for the sets that need a download),
# then the benchmark with AMP, channels-last and torch.compile.  Usage: tools/gpu_check.sh [OUT_DIR]
# BENCH=0 skips the benchmark. Needs the packages of requirements.txt; prints one line per step and keeps each step's log in OUT_DIR.
set -u
OUT_DIR=${1:-outputs/gpu-check}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg COURSE_CHECKPOINTS=${COURSE_CHECKPOINTS:-$OUT_DIR/checkpoints}
PY=${PYTHON:-python3}
failed=0

step() {  # step NAME COMMAND...: run, time, report
    local name=$1; shift
    local started=$SECONDS
    "$@" >"$OUT_DIR/$name.log" 2>&1
    local rc=$?
    printf '%-14s rc=%d %4d s  %s\n' "$name" "$rc" $((SECONDS - started)) "$(tail -n 1 "$OUT_DIR/$name.log" | cut -c1-150)"
    [ "$rc" -eq 0 ] || failed=1
}

$PY -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(), '| bf16', torch.cuda.is_bf16_supported())"
step gan-resnet  $PY -m gan train --loss wgan-gp --profile full --dataset mnist5k --iters 300 --fid-samples 1000 --out "$OUT_DIR/gan"
step gan-sample  $PY -m gan sample --ckpt "$OUT_DIR/gan/model.pt" -n 64 --out "$OUT_DIR/gan/samples.npz"
step vae-conv    $PY -m vae train --model vae --profile full --dataset mnist5k --epochs 2 --out "$OUT_DIR/vae"
step ae-recon    $PY -m vae train --model ae --latent 128 --profile full --dataset mnist5k --epochs 2 --out "$OUT_DIR/ae"
step vae-natural $PY -m vae train --model natural-vae --profile full --dataset skimage_photos --epochs 2 --out "$OUT_DIR/natural"
step cvae        $PY -m cvae train --profile full --dataset mnist5k --epochs 3 --out "$OUT_DIR/cvae"
step vqvae       $PY -m vqvae train --profile full --dataset mnist5k --epochs 2 --prior-epochs 1 --gan-steps 100 --out "$OUT_DIR/vqvae"
step vqvae-samp  $PY -m vqvae sample --ckpt "$OUT_DIR/vqvae/model.pt" -n 64 --prior dcgan --out "$OUT_DIR/vqvae/samples.npz"
step unit-tests  $PY -m pytest -q -p no:nbval tests/test_gan_models.py tests/test_gan_losses.py tests/test_vae.py tests/test_vqvae.py tests/test_cvae.py tests/test_training.py
[ "${BENCH:-1}" = 0 ] || step bench $PY tools/bench.py --amp --channels-last --compile --seconds 2 --json "$OUT_DIR/bench.json"
[ "${BENCH:-1}" = 0 ] || cat "$OUT_DIR/bench.log"
exit $failed
