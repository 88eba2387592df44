"""``python -m gan``: train a GAN variant or sample from a trained one.

    python -m gan train --loss {vanilla,lsgan,wgan-gp} --dataset mnist5k --profile quick --out runs/wgan \
        [--iters N] [--seed S] [--arch {digits,resnet}] [--fid-samples N]
    python -m gan sample --ckpt runs/wgan/model.pt -n 1000 --out samples.npz [--seed S]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gan.losses import LOSSES
from gan.train import RECIPES, GanRun, config_for, decode, load_generator, training_set_scorer
from utils.cli import CourseArgumentParser, add_common_training_arguments, positive_int, run_cli
from utils.config import by_profile, resolve_profile
from utils.fid import choose_fid_features, feature_label
from utils.noise import per_sample_randn
from utils.runfiles import finish_run, save_samples_npz


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(prog="python -m gan", description="GAN variants: vanilla, LSGAN, WGAN-GP")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CourseArgumentParser)
    train = commands.add_parser("train", help="train one variant; writes model.pt, metrics.json, samples.png")
    train.add_argument("--loss", choices=list(LOSSES), required=True)
    train.add_argument("--recipe", choices=list(RECIPES), default="shared",
                       help="shared: the budget all three losses get (default); tuned: WGAN-GP's own quick recipe")
    add_common_training_arguments(train, default_dataset=None)
    train.add_argument("--iters", type=positive_int, default=None, help="iterations (critic updates)")
    train.add_argument("--arch", choices=["digits", "resnet"], default=None, help="default: the profile's")
    train.add_argument("--fid-samples", type=positive_int, default=None,
                       help="samples for the final FID in metrics.json (default: none in smoke, 1000 in quick, "
                            "50000 in full; Inception in full when its weights can be had, else classifier-FID "
                            "on digits and no FID on other data sets)")
    sample = commands.add_parser("sample", help="write samples.npz from a trained generator")
    sample.add_argument("--ckpt", required=True, help="DIR/model.pt written by train")
    sample.add_argument("-n", type=positive_int, default=64, help="number of images")
    sample.add_argument("--out", required=True, help="output .npz file")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def train(args) -> int:
    profile = resolve_profile(args.profile)
    overrides = {"seed": args.seed}
    if args.iters:
        overrides["iters"] = args.iters
    if args.arch:
        overrides["architecture"] = args.arch
    config = config_for(profile, args.dataset, loss=args.loss, recipe=args.recipe, **overrides)  # ValueError: exit 2
    out = Path(args.out)
    run = GanRun(config, path=out / "model.pt")
    resumed = run.trainer.resume()
    print(f"{config.loss} GAN on {config.dataset} ({profile} profile, {config.architecture} model, "
          f"{config.iters} iterations, n_critic {config.n_critic}) on {run.device}"
          + (f"; resumed at step {run.trainer.step}" if resumed else ""))
    run.train()
    metrics = {"loss": config.loss, "dataset": config.dataset, "profile": profile,
               **{name: round(run.trainer.last(name), 5) for name in run.trainer.history}}
    fid_samples = args.fid_samples or by_profile(profile, smoke=None, quick=1000, full=50_000)
    features = choose_fid_features(profile, config.dataset) if fid_samples else None  # None: prints why not
    if features is not None:
        score = training_set_scorer(run, features)
        metrics |= {"fid": round(score(run.sample(fid_samples, seed=args.seed)), 4),
                    "fid_features": feature_label(features), "fid_samples": fid_samples}
        print(f"{feature_label(features)} of {fid_samples} samples: {metrics['fid']:.2f}")
    summary = finish_run(out, run.trainer, images_seen=run.trainer.step * config.batch_size,
                         metrics=metrics, samples=run.sample(100, seed=args.seed))
    print(f"wrote {out / 'model.pt'}, metrics.json, samples.png ({summary['wall_seconds']} s of training)")
    return 0


def sample(args) -> int:
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    generator, config = load_generator(args.ckpt)
    z = per_sample_randn(args.n, (config.z_dim,), seed=args.seed)  # image k fixed by (seed, k), as GanRun.sample
    path = save_samples_npz(args.out, decode(generator, z))
    print(f"wrote {args.n} samples of the {config.loss} GAN to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return train(args) if args.command == "train" else sample(args)


if __name__ == "__main__":
    run_cli(main)
