"""``python -m vqvae``: train a VQ-VAE and its two priors, sample from a prior, reconstruct a split.

    python -m vqvae train --dataset mnist5k --out runs/vqvae [--epochs N] [--prior-epochs N] [--gan-steps N] \
        [--seed S] [--profile P]
    python -m vqvae sample --ckpt runs/vqvae/model.pt -n 100 --out samples.npz [--prior {pixelcnn,dcgan}] \
        [--seed S] [--label K]
    python -m vqvae reconstruct --ckpt runs/vqvae/model.pt --dataset mnist5k --split test --out recon.npz

``train`` writes ``DIR/model.pt`` (the VQ-VAE and both priors), the three resumable training
checkpoints ``DIR/vqvae.pt``, ``DIR/pixelcnn.pt``, ``DIR/dcgan.pt``, ``DIR/metrics.json`` and
``DIR/samples.png`` (PixelCNN samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from utils.cli import CourseArgumentParser, add_common_training_arguments, dataset_name, positive_int, run_cli
from utils.config import resolve_profile
from utils.data import dataset_info
from utils.devices import pick_device
from utils.image_measures import ssim
from utils.runfiles import finish_run, save_reconstructions_npz, save_samples_npz
from vqvae.bundle import PRIORS, load_bundle, sample_prior, save_bundle
from vqvae.prior_runs import CodeGANRun, PixelCNNRun, code_nll
from vqvae.train import VQVAERun, augmented_codes, config_for, encode, load_images, map_labels, reconstruct

SAMPLES_PNG = 100


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(prog="python -m vqvae", description="VQ-VAE with a PixelCNN and a DCGAN prior")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CourseArgumentParser)
    train = commands.add_parser("train", help="train the VQ-VAE, then both priors; writes model.pt, metrics.json")
    add_common_training_arguments(train)
    train.add_argument("--epochs", type=positive_int, default=None, help="VQ-VAE epochs (default: the profile's)")
    train.add_argument("--prior-epochs", type=positive_int, default=None, help="PixelCNN epochs")
    train.add_argument("--gan-steps", type=positive_int, default=None, help="DCGAN prior steps")
    sample = commands.add_parser("sample", help="write samples.npz: code maps from a prior, decoded")
    sample.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    sample.add_argument("-n", type=positive_int, default=100, help="number of images")
    sample.add_argument("--out", required=True, help="output .npz file")
    sample.add_argument("--prior", choices=PRIORS, default="pixelcnn")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--label", type=int, default=None,
                        help="class of every sample (a class-conditional PixelCNN; default: all classes in turn)")
    recon = commands.add_parser("reconstruct", help="write recon.npz: a whole split and its reconstructions")
    recon.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    recon.add_argument("--dataset", type=dataset_name, default="mnist5k")
    recon.add_argument("--split", default="test")
    recon.add_argument("--out", required=True, help="output .npz file")
    return parser


def train(args) -> int:
    profile = resolve_profile(args.profile)
    settings = config_for(profile, args.dataset, args.seed)
    vq_config = replace(settings.vqvae, epochs=args.epochs or settings.vqvae.epochs)
    pixelcnn_config = replace(settings.pixelcnn, epochs=args.prior_epochs or settings.pixelcnn.epochs)
    gan_config = replace(settings.gan, steps=args.gan_steps or settings.gan.steps)
    out = Path(args.out)
    device = pick_device()
    shape = vq_config.shape
    print(f"VQ-VAE on {vq_config.dataset} ({profile} profile): K = {shape.num_codes} codes of D = {shape.code_dim}, "
          f"{vq_config.epochs} epochs; PixelCNN {pixelcnn_config.epochs} epochs; DCGAN {gan_config.steps} steps")
    vq = VQVAERun(vq_config, path=out / "vqvae.pt", device=device).load_or_train()
    model, train_images, test_images = vq.model, vq.train_images, vq.test_images
    train_codes, test_codes = encode(model, train_images), encode(model, test_images)
    prior_codes = augmented_codes(model, train_images, settings.augment_copies, args.seed)
    labels = map_labels(vq_config.dataset, settings.augment_copies, device)
    pixelcnn = PixelCNNRun(pixelcnn_config, vq, prior_codes, test_codes, path=out / "pixelcnn.pt",
                           train_labels=labels.train, test_labels=labels.test,
                           num_classes=labels.num_classes).load_or_train()
    gan = CodeGANRun(gan_config, vq, train_codes, path=out / "dcgan.pt").load_or_train()
    bundle = load_bundle(save_bundle(out / "model.pt", vq, pixelcnn, gan), device)
    recon_ssim = float(ssim(test_images.cpu(), reconstruct(model, test_images)).mean())
    metrics = {"dataset": vq_config.dataset, "profile": profile, "epochs": vq_config.epochs,
               "num_codes": shape.num_codes, "code_dim": shape.code_dim,
               "test_reconstruction_ssim": recon_ssim,
               "test_reconstruction_loss": vq.trainer.last("test_reconstruction"),
               "test_perplexity": vq.trainer.last("test_perplexity"),
               "test_codes_used": vq.trainer.last("test_codes_used"),
               "pixelcnn_test_nll": code_nll(bundle.pixelcnn, test_codes, labels.test),
               "pixelcnn_num_classes": bundle.pixelcnn.num_classes,
               "trained_parts": {"vqvae": vq.trainer.config, "pixelcnn": pixelcnn.trainer.config,
                                 "dcgan": gan.trainer.config}}
    images = sample_prior(bundle, "pixelcnn", SAMPLES_PNG, seed=0)
    images_seen = vq.trainer.step * vq_config.batch_size
    summary = finish_run(out, vq.trainer, images_seen, metrics, samples=images, nrow=10)
    print(f"test reconstruction SSIM {recon_ssim:.3f}, code perplexity {metrics['test_perplexity']:.1f} "
          f"of {shape.num_codes}, PixelCNN test NLL {metrics['pixelcnn_test_nll']:.3f} nats per position; "
          f"wrote {out / 'model.pt'}, metrics.json, samples.png ({summary['wall_seconds']} s for the VQ-VAE)")
    return 0


def _check_npz(path: str) -> None:
    if Path(path).suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {path}")


def sample_command(args) -> int:
    _check_npz(args.out)
    bundle = load_bundle(args.ckpt, pick_device())
    path = save_samples_npz(args.out, sample_prior(bundle, args.prior, args.n, args.seed, args.label))
    given = "" if args.label is None else f" given the label {args.label}"
    print(f"wrote {args.n} samples of the {args.prior} prior{given} to {path}")
    return 0


def reconstruct_command(args) -> int:
    _check_npz(args.out)
    splits = dataset_info(args.dataset).splits
    if args.split not in splits:
        raise ValueError(f"data set {args.dataset!r} has no split {args.split!r}; it has: {', '.join(splits)}")
    device = pick_device()
    bundle = load_bundle(args.ckpt, device)
    images = load_images(args.dataset, args.split, device)
    expected = tuple(bundle.config["image_shape"])
    if tuple(images.shape[1:]) != expected:
        raise ValueError(f"{args.dataset} images are {tuple(images.shape[1:])}; the model was trained on {expected}")
    reconstructions = reconstruct(bundle.vqvae, images)
    path = save_reconstructions_npz(args.out, images.cpu(), reconstructions)
    print(f"wrote {len(images)} {args.split} images and their reconstructions to {path} "
          f"(mean SSIM {ssim(images.cpu(), reconstructions).mean():.3f})")
    return 0


COMMANDS = {"train": train, "sample": sample_command, "reconstruct": reconstruct_command}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    run_cli(main)
