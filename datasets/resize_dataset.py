"""Resize every image under a folder to RES x RES, keeping the folder structure.

    python datasets/resize_dataset.py --input_folder datasets/CUB_200_2011/images \\
        --output_folder datasets/CUB_200_2011_32 --res 32

The reference write-up's flags, without its failure modes: grayscale, palette and CMYK files
become RGB, truncated and non-image files are skipped and listed at the end (the
seed made you delete 8 files by hand), and nothing is ever written outside the
output folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from utils.cli import CourseArgumentParser, positive_int, run_cli
from utils.imagefiles import SkippedFile, resize_folder

__all__ = ["main", "resize_folder"]


def build_parser() -> CourseArgumentParser:
    parser = CourseArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input_folder", required=True, type=Path, help="images, searched recursively")
    parser.add_argument("--output_folder", required=True, type=Path, help="where the resized copies go")
    parser.add_argument("--res", required=True, type=positive_int, help="output side length in pixels")
    parser.add_argument(
        "--stretch",
        action="store_true",
        help="resize the whole image to RES x RES, ignoring its aspect ratio (the reference write-up did this) "
        "instead of center-cropping a square first",
    )
    parser.add_argument(
        "--format",
        choices=("same", "png", "jpg"),
        default="same",
        help="output files: 'same' (JPEG stays JPEG, others become PNG), 'png' (lossless) or 'jpg'",
    )
    parser.add_argument("--grayscale", action="store_true", help="write 8-bit gray instead of RGB")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    written, skipped = resize_folder(
        args.input_folder,
        args.output_folder,
        args.res,
        mode="L" if args.grayscale else "RGB",
        crop=not args.stretch,
        output_format=args.format,
    )
    mode = "gray" if args.grayscale else "RGB"
    print(f"wrote {len(written)} images ({args.res}x{args.res} {mode}) to {args.output_folder}")
    report_skipped(skipped)
    return 0


def report_skipped(skipped: list[SkippedFile]) -> None:
    if not skipped:
        print("skipped 0 files")
        return
    print(f"skipped {len(skipped)} file(s):")
    for entry in skipped:
        print(f"  {entry}")


if __name__ == "__main__":
    run_cli(main)
