"""Download (or find on disk), convert and cache a registered data set, then say what it holds.

    python datasets/download.py --list
    python datasets/download.py cifar10 [--root DIR]

Data go to ``--root`` (default: ``$COURSE_DATA`` or ``datasets/``); the converted
tensors are cached as ``<root>/cache/<name>.pt``.  Offline, a set that cannot be
had ends with one line saying what to do by hand; ``mnist5k`` always works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from utils.cli import CourseArgumentParser, dataset_name, run_cli
from utils.config import data_root
from utils.data import REGISTRY, ImageSet, available_datasets, cache_path, dataset_info, load_all_splits


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(description=__doc__.split("\n\n")[0])
    known = ", ".join(available_datasets())
    parser.add_argument("name", nargs="?", type=dataset_name, help=f"one of: {known}")
    parser.add_argument("--root", type=Path, default=None, help="data folder ($COURSE_DATA or datasets/)")
    parser.add_argument("--list", action="store_true", help="list the registered data sets and exit")
    parser.add_argument("--no-download", action="store_true", help="use only files already on disk")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(describe_registry())
        return 0
    if args.name is None:
        parser.error(f"name a data set (or use --list); known: {', '.join(available_datasets())}")
    root = args.root or data_root()
    splits = load_all_splits(args.name, root, download=not args.no_download)
    print(describe_splits(args.name, splits, root))
    return 0


def describe_registry() -> str:
    width = max(len(name) for name in REGISTRY)
    return "\n".join(f"{info.name:<{width}}  {info.description}" for info in REGISTRY.values())


def describe_splits(name: str, splits: dict[str, ImageSet], root: Path) -> str:
    info = dataset_info(name)
    lines = [f"{name}: {info.description}"]
    for split, images in splits.items():
        shape = "x".join(str(n) for n in images.image_shape)
        classes = f"{len(images.classes)} classes" if images.labels is not None else "unlabelled"
        lines.append(f"  {split:<10} {len(images):>7} images  {shape:<10} {classes}")
    cache = "embedded in an installed package, no cache file" if info.embedded else cache_path(name, root)
    lines.append(f"  cache: {cache}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
