"""``python -m vae``: train an AE / VAE / beta-VAE, sample a VAE, or reconstruct a split.

    python -m vae train --model {ae,vae,mlp-vae,natural-vae} --latent N [--beta B] \
        [--beta-schedule {constant,linear,cyclical}] --dataset mnist5k --out DIR [--epochs N] [--width W] \
        [--seed S] [--profile P]
    python -m vae sample --ckpt DIR/model.pt -n 64 --out samples.npz [--seed S]
    python -m vae reconstruct --ckpt DIR/model.pt --dataset mnist5k --split test --out recon.npz
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from utils.cli import CourseArgumentParser, add_common_training_arguments, dataset_name, positive_int, run_cli
from utils.config import resolve_profile
from utils.data import dataset_info
from utils.image_measures import pcc, ssim
from utils.runfiles import finish_run, save_reconstructions_npz, save_samples_npz
from vae.losses import BETA_SCHEDULES
from vae.models import MODELS
from vae.train import VAERun, config_for, eval_split, evaluate, load_images, load_model, reconstruct, sample


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value!r}")
    return number


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(prog="python -m vae", description="Autoencoders, VAEs and beta-VAEs")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CourseArgumentParser)
    train = commands.add_parser("train", help="train one model; writes model.pt, metrics.json, samples.png")
    add_common_training_arguments(train)
    train.add_argument("--model", choices=list(MODELS), default="vae",
                       help="; ".join(f"{name}: {kind.description}" for name, kind in MODELS.items()))
    train.add_argument("--latent", type=positive_int, default=None,
                       help="latent size (default: ae 128, vae 1024, mlp-vae 20, natural-vae 128)")
    train.add_argument("--beta", type=non_negative_float, default=1.0, help="KL weight (the schedule's target)")
    train.add_argument("--beta-schedule", choices=BETA_SCHEDULES, default="constant",
                       help="constant, linear (0 -> beta at the last epoch) or cyclical")
    train.add_argument("--epochs", type=positive_int, default=None, help="default: the profile's")
    train.add_argument("--width", type=positive_int, default=None,
                       help="channels of the first conv layer (hidden units for mlp-vae); default: the profile's")
    sample = commands.add_parser("sample", help="write samples.npz (uint8 images) from a VAE's prior")
    sample.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    sample.add_argument("-n", type=positive_int, default=64, help="number of images")
    sample.add_argument("--out", required=True, help="output .npz file")
    sample.add_argument("--seed", type=int, default=0)
    recon = commands.add_parser("reconstruct", help="write recon.npz (originals, reconstructions) and print SSIM")
    recon.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    recon.add_argument("--dataset", type=dataset_name, default=None, help="default: the one it was trained on")
    recon.add_argument("--split", default=None, help="default: the evaluation split (test, or validation)")
    recon.add_argument("--out", required=True, help="output .npz file")
    return parser


def train(args) -> int:
    profile = resolve_profile(args.profile)
    config = config_for(profile, args.dataset, model=args.model, latent=args.latent, beta=args.beta,
                        beta_schedule=args.beta_schedule, epochs=args.epochs, width=args.width, seed=args.seed)
    out = Path(args.out)
    beta = f", beta {config.beta:g} ({config.beta_schedule})" if MODELS[config.model].variational else ""
    print(f"{config.model} on {config.dataset} ({profile} profile): latent {config.latent}{beta}, width "
          f"{config.width}, {config.epochs} epochs, batch {config.batch_size}, "
          f"Adam {config.lr:g} ({config.lr_schedule} rate)")
    run = VAERun(config, path=out / "model.pt").load_or_train()
    trainer, model, data = run.trainer, run.model, run.val_data
    split = data.split
    scores = evaluate(model, data)
    if model.variational:
        images = sample(model, 64, seed=0)
    else:  # an AE has no prior: rows of 8 test images (spread over the split), each over their reconstructions
        shown = torch.arange(0, len(data), max(1, len(data) // 32))[:32]
        recon = reconstruct(model, data, shown.to(data.x.device))
        rows = (len(shown) // 8, 8, *recon.shape[1:])
        images = torch.stack([data.images[shown][: rows[0] * 8].view(rows), recon[: rows[0] * 8].view(rows)],
                             dim=1).flatten(0, 2)
    images_seen = round(trainer.step / trainer.config["steps_per_epoch"] * trainer.config["train_images"])
    metrics = {"model": config.model, "dataset": config.dataset, "profile": profile, "epochs": config.epochs,
               "split": split, **{f"{split}_{k}": v for k, v in scores.items()}}
    summary = finish_run(out, trainer, images_seen, metrics, samples=images, nrow=8)
    parts = f" (recon {scores['recon']:.2f} + KL {scores['kl']:.2f})" if "kl" in scores else ""
    print(f"{split} loss per image {scores['loss']:.2f}{parts}; wrote {out / 'model.pt'}, metrics.json, "
          f"samples.png ({'samples' if model.variational else 'test images over their reconstructions'}; "
          f"{summary['wall_seconds']} s)")
    return 0


def sample_command(args) -> int:
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    model, _ = load_model(args.ckpt)
    path = save_samples_npz(args.out, sample(model, args.n, seed=args.seed))
    print(f"wrote {args.n} samples of the {model.kind} (latent {model.latent}) to {path}")
    return 0


def reconstruct_command(args) -> int:
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    model, config = load_model(args.ckpt)
    dataset = args.dataset or config.dataset
    split = args.split or eval_split(dataset)
    splits = dataset_info(dataset).splits
    if split not in splits:
        raise ValueError(f"data set {dataset!r} has no split {split!r}; it has: {', '.join(splits)}")
    data = load_images(dataset, split, config.model, config.image_size)
    if data.image_shape != tuple(model.image_shape):
        raise ValueError(f"{args.ckpt} takes {'x'.join(map(str, model.image_shape))} images; "
                         f"{dataset} gives {'x'.join(map(str, data.image_shape))}")
    reconstructions = reconstruct(model, data)
    path = save_reconstructions_npz(args.out, data.images, reconstructions)
    print(f"{dataset} {split}: {len(data)} images, mean SSIM {ssim(data.images, reconstructions).mean():.4f}, "
          f"mean PCC {np.nanmean(pcc(data.images, reconstructions)):.4f}; wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": train, "sample": sample_command, "reconstruct": reconstruct_command}
    return commands[args.command](args)


if __name__ == "__main__":
    run_cli(main)
