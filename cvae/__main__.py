"""``python -m cvae``: train a CVAE (or the plain VAE baseline), or sample from a trained one.

    python -m cvae train --dataset mnist5k --latent 2 --out runs/cvae [--model {cvae,vae}] [--epochs N] \
        [--seed S] [--profile P]
    python -m cvae sample --ckpt runs/cvae/model.pt -n 100 --out samples.npz [--label K] [--seed S]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from cvae.models import MODELS
from cvae.train import config_for, evaluate, load_model, load_split, sample
from utils.cli import CourseArgumentParser, add_common_training_arguments, positive_int, run_cli
from utils.config import resolve_profile
from utils.runfiles import finish_run, save_samples_npz
from vae.mlp import MLPVAERun

NUM_LABELS = 10


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(prog="python -m cvae", description="Conditional VAE vs VAE (MLP, 500 hidden units)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CourseArgumentParser)
    train = commands.add_parser("train", help="train one model; writes model.pt, metrics.json, samples.png")
    add_common_training_arguments(train)
    train.add_argument("--model", choices=list(MODELS), default="cvae", help="cvae (default) or the vae baseline")
    train.add_argument("--latent", type=positive_int, default=None,
                       help="latent size (default: 2 for MNIST digits, 10 for FashionMNIST / KMNIST)")
    train.add_argument("--epochs", type=positive_int, default=None, help="default: the profile's")
    sample = commands.add_parser("sample", help="write samples.npz (images, and labels for a CVAE)")
    sample.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    sample.add_argument("-n", type=positive_int, default=100, help="number of images")
    sample.add_argument("--out", required=True, help="output .npz file")
    sample.add_argument("--label", type=int, default=None,
                        help=f"CVAE only: the label of every image, 0..{NUM_LABELS - 1} (default: cycle through them)")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def train(args) -> int:
    profile = resolve_profile(args.profile)
    config = config_for(profile, args.dataset, model=args.model, latent=args.latent, epochs=args.epochs, seed=args.seed)
    out = Path(args.out)
    print(f"{config.model.upper()} on {config.dataset} ({profile} profile): latent {config.latent}, "
          f"{config.epochs} epochs, batch {config.batch_size}, Adam {config.lr:g}")
    run = MLPVAERun(config, path=out / "model.pt").load_or_train()
    trainer, model = run.trainer, run.model
    test = evaluate(model, load_split(config.dataset, "test", run.device))
    labels = torch.arange(NUM_LABELS).repeat_interleave(10) if model.conditional else None
    images = sample(model, 100, labels, seed=0)
    epochs_done = trainer.step / trainer.config["steps_per_epoch"]
    images_seen = round(epochs_done * len(load_split(config.dataset, "train")))
    metrics = {"model": config.model, "dataset": config.dataset, "profile": profile, "epochs": config.epochs,
               "train_loss": trainer.last("train_loss"), **{f"test_{k}": v for k, v in test.items()}}
    summary = finish_run(out, trainer, images_seen, metrics, samples=images, nrow=10)
    print(f"test loss per image {test['loss']:.2f} (BCE {test['bce']:.2f} + KL {test['kl']:.2f}); "
          f"wrote {out / 'model.pt'}, metrics.json, samples.png ({summary['wall_seconds']} s)")
    return 0


def sample_command(args) -> int:
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    if args.label is not None and not 0 <= args.label < NUM_LABELS:
        raise ValueError(f"--label must be in 0..{NUM_LABELS - 1}, got {args.label}")
    model = load_model(args.ckpt)
    if args.label is not None and not model.conditional:
        raise ValueError(f"--label needs a CVAE checkpoint; {args.ckpt} holds a plain VAE, which takes no label")
    labels = None
    if model.conditional:
        labels = torch.full((args.n,), args.label) if args.label is not None else torch.arange(args.n) % NUM_LABELS
    images = sample(model, args.n, labels, seed=args.seed)
    path = save_samples_npz(args.out, images, labels)
    what = f"label {args.label}" if args.label is not None else ("labels 0..9 in turn" if labels is not None else "")
    print(f"wrote {args.n} samples of the {'CVAE' if model.conditional else 'VAE'}"
          + (f" ({what})" if what else "") + f" to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return train(args) if args.command == "train" else sample_command(args)


if __name__ == "__main__":
    run_cli(main)
