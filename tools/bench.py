"""Benchmark: training images per second, in-memory tensors vs the usual DataLoader pipeline.

``python tools/bench.py [CASE ...] [--device cpu|cuda] [--seconds S] [--json FILE]``

For every model family at its ``quick`` configuration it runs the family's own training step
(``Run.step`` of ``gan``, ``vae``, ``vae.mlp``, ``vqvae``: the code that trains, losses, clipping,
schedules and all) on the same batches, fed two ways:

* **in memory** -- the course's path: the whole set is a uint8 tensor on the training device,
  a batch is an index slice (:class:`utils.data.IndexBatches`) turned into floats there;
* **usual** -- ``torchvision.datasets.MNIST`` itself (the same images, written to MNIST's
  files in a temporary folder) with ``transforms.ToTensor()``, one PIL image at a time, behind a
  shuffling ``DataLoader``, batches copied to the device; other image shapes go through a
  ``Dataset`` that does what ``torchvision.datasets.CIFAR10`` does.

It prints the ratio, the sampling throughput, the peak memory and the FLOPs per trained
image (``torch.utils.flop_counter``) against this machine's measured matmul FLOP/s.  Each
case runs in its own process, so its peak memory is its own.  On CUDA ``--amp`` and
``--channels-last`` add measured variants, and ``--compile`` a ``torch.compile`` one; on the CPU ``--amp``
measures bfloat16 autocast (what ``COURSE_AMP=1`` gives), and ``COURSE_THREADS=N`` in the environment runs
the small models on N threads instead of one, as it does in the course.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from utils.cli import CourseArgumentParser, run_cli
from utils.data import EMBEDDED, ImageSet, IndexBatches, load_dataset, to_float
from utils.devices import course_threads, pick_device, small_model_threads

StepFn = Callable[[torch.Tensor, torch.Tensor], None]
SampleFn = Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One model family at one set-up; ``build(device, options, data)`` -> (train step, sampler, networks).

    The train step is the family's own :meth:`Run.step` (``utils.run``) on a batch the benchmark hands it, so
    the table measures the code that trains; the sampler is the family's own ``sample``.
    """

    name: str
    description: str
    batch_size: int
    build: Callable[[torch.device, dict, ImageSet], tuple[StepFn, SampleFn, torch.nn.Module]]
    value_range: tuple[float, float] = (0.0, 1.0)  # what the family's step takes
    conv: bool = False  # channels-last applies
    image_shape: tuple[int, int, int] = (1, 28, 28)  # mnist5k; other shapes train on random images of that shape


def _mlp_vae_case(chapter: str, latent: int):
    """Chapter 04's VAE or chapter 05's CVAE: :class:`vae.mlp.MLPVAERun` (it reads mnist5k itself)."""

    def build(device: torch.device, options: dict, data: ImageSet):
        import cvae
        import vae.latent
        from vae.mlp import MLPVAERun

        config = vae.latent.config_for("quick", latent=latent) if chapter == "04" else cvae.config_for("quick")
        run = MLPVAERun(config, device=device)
        conditional = run.model.conditional

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            run.step((x.flatten(1), y if conditional else None))

        def sample(n: int) -> torch.Tensor:
            return run.sample(n, labels=torch.arange(n) % 10 if conditional else None)

        return step, sample, run.model

    return build


def _gan_case(loss: str, profile: str = "quick"):
    """A GAN variant: :class:`gan.train.GanRun` on the benchmark's images."""

    def build(device: torch.device, options: dict, data: ImageSet):
        import gan

        config = gan.config_for(profile, loss=loss, amp=bool(options.get("amp")),
                                channels_last=bool(options.get("channels_last")))
        run = gan.GanRun(config, device=device, data=data)
        return (lambda x, y: run.step(x)), (lambda n: run.sample(n, seed=0)), \
            torch.nn.ModuleList([run.generator, run.discriminator])

    return build


def _conv_ae_case(model_name: str, latent: int, profile: str = "quick"):
    """Chapter 02's conv autoencoder: :class:`vae.train.VAERun`; an AE has no prior, so random codes are decoded."""

    def build(device: torch.device, options: dict, data: ImageSet):
        import vae
        from vae.train import decode_images

        config = vae.config_for(profile, model=model_name, latent=latent, amp=bool(options.get("amp")),
                                channels_last=bool(options.get("channels_last")))
        run = vae.VAERun(config, device=device, data=data)

        def sample(n: int) -> torch.Tensor:
            return decode_images(run.model, torch.randn(n, config.latent))

        return (lambda x, y: run.step(x)), sample, run.model

    return build


def _vqvae_case(profile: str = "quick"):
    """Chapter 06's VQ-VAE: :class:`vqvae.train.VQVAERun`; sampling decodes random code maps (a prior's cost on top)."""

    def build(device: torch.device, options: dict, data: ImageSet):
        from dataclasses import replace

        from vqvae.train import VQVAERun, config_for, decode

        config = replace(config_for(profile, "mnist5k").vqvae if profile == "quick" else config_for(profile).vqvae,
                         amp=True, channels_last=bool(options.get("channels_last")))
        run = VQVAERun(config, device=device, data=data)
        with torch.no_grad():
            map_shape = run.model.encode_indices(run.batch(0)[:1]).shape[1:]

        def sample(n: int) -> torch.Tensor:
            return decode(run.model, torch.randint(0, run.model.num_codes, (n, *map_shape)))

        return (lambda x, y: run.step(x)), sample, run.model

    return build


CASES: dict[str, Case] = {
    "mlp_vae": Case("mlp_vae", "MLP VAE 784-400-2 (chapter 04)", 128, _mlp_vae_case("04", 2)),
    "cvae": Case("cvae", "CVAE 794-500-2 (chapter 05)", 128, _mlp_vae_case("05", 2)),
    "conv_ae": Case("conv_ae", "the published conv AE, latent 128, quick width 8 (chapter 02)", 32,
                    _conv_ae_case("ae", 128), value_range=(-1.0, 1.0), conv=True),
    "gan": Case("gan", "digit WGAN-GP, quick set-up (chapter 01)", 64, _gan_case("wgan-gp"), value_range=(-1.0, 1.0),
                conv=True),
    "vqvae": Case("vqvae", "digit VQ-VAE, quick set-up (chapter 06)", 64, _vqvae_case(), conv=True),
}

# ``--profile full``: the published set-ups of the conv families, on random images of the published shape (the
# speed of a step does not depend on what the pixels show); the MLPs are the published ones already
FULL_CASES: dict[str, Case] = {
    "mlp_vae": CASES["mlp_vae"],
    "cvae": CASES["cvae"],
    "conv_ae": Case("conv_ae", "the published CIFAR-10 conv AE, latent 128, width 32", 256,
                    _conv_ae_case("ae", 128, "full"), value_range=(-1.0, 1.0), conv=True, image_shape=(3, 32, 32)),
    "gan": Case("gan", "the published CUB ResNet WGAN-GP, 128 channels", 256, _gan_case("wgan-gp", "full"),
                value_range=(-1.0, 1.0), conv=True, image_shape=(3, 32, 32)),
    "vqvae": Case("vqvae", "the OASIS VQ-VAE (K 512, D 64) on 256 px slices", 32, _vqvae_case("full"), conv=True,
                  image_shape=(1, 256, 256)),
}
PROFILES = {"quick": CASES, "full": FULL_CASES}


def bench_data(case: Case) -> ImageSet:
    """mnist5k's training split, or random uint8 images of the case's shape (1000 of 256 px, else 4000)."""
    if case.image_shape == (1, 28, 28):
        return load_dataset(EMBEDDED, "train")
    n = 1000 if case.image_shape[-1] > 64 else 4000
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, *case.image_shape), dtype=torch.uint8, generator=generator)
    return ImageSet("random", "train", images, torch.zeros(n, dtype=torch.int64), ("random",))


# --------------------------------------------------------------------------- the two data paths


def usual_transform(value_range: tuple[float, float], channels: int):
    """``ToTensor`` (floats in [0, 1]), then ``Normalize`` to [-1, 1] where the family trains on that range."""
    from torchvision import transforms

    steps = [transforms.ToTensor()]
    if value_range == (-1.0, 1.0):
        steps.append(transforms.Normalize([0.5] * channels, [0.5] * channels))
    return transforms.Compose(steps)


class TorchvisionStyleDataset(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10`` does: one PIL image per item (H x W x C arrays), then the transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, value_range: tuple[float, float]):
        self.images = images.permute(0, 2, 3, 1).numpy()  # N x H x W x C, as torchvision keeps them
        self.labels = labels.tolist()
        self.transform = usual_transform(value_range, images.shape[1])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        array = self.images[index]
        picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        return self.transform(picture), self.labels[index]


def write_mnist_files(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """``images`` (N x 1 x 28 x 28 uint8) and labels as MNIST's four raw files under ``folder/MNIST/raw``.

    Both splits hold the same images; ``torchvision.datasets.MNIST(folder, download=False)`` then reads them.
    """
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    pixels, targets = images[:, 0].contiguous().numpy().tobytes(), labels.to(torch.uint8).numpy().tobytes()
    for split in ("train", "t10k"):  # big-endian headers: magic number (2051 images, 2049 labels), then sizes
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(images), 28, 28) + pixels)
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + targets)
    return folder


def usual_dataset(images: torch.Tensor, labels: torch.Tensor, value_range: tuple[float, float],
                  folder: Path) -> torch.utils.data.Dataset:
    """The usual ``Dataset``: torchvision's MNIST class for 28 px digits (files in ``folder``), else CIFAR10's way."""
    if tuple(images.shape[1:]) != (1, 28, 28):
        return TorchvisionStyleDataset(images, labels, value_range)
    from torchvision.datasets import MNIST

    return MNIST(write_mnist_files(folder, images, labels), train=True, download=False,
                 transform=usual_transform(value_range, 1))


class TimedPath:
    """One data path's training loop, timed in slices, so that two paths can take turns.

    Step speed drifts while a model trains and while a shared machine's load changes; timing the paths
    in the order A B B A cancels a steady drift instead of handing it to whichever path ran second.
    """

    def __init__(self, run_step: Callable[[int], int], device: torch.device):
        self.run_step, self.device = run_step, device
        self.step, self.images, self.seconds = 0, 0, 0.0

    def warm_up(self, steps: int) -> None:
        for _ in range(steps):
            self.run_step(self.step)
            self.step += 1
        _sync(self.device)

    def run_for(self, seconds: float) -> None:
        """Train for at least ``seconds`` more (checking the clock every 5 steps), adding to the totals."""
        images, started = 0, time.perf_counter()
        while True:
            images += self.run_step(self.step)
            self.step += 1
            if self.step % 5 == 0:
                _sync(self.device)
                elapsed = time.perf_counter() - started
                if elapsed >= seconds:
                    self.images, self.seconds = self.images + images, self.seconds + elapsed
                    return

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def in_memory_steps(case: Case, step: StepFn, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                    channels_last: bool) -> Callable[[int], int]:
    """The course's path: ``run(i)`` trains on the ``i``-th index slice of the whole set on the device."""
    images, labels = images.to(device), labels.to(device)
    batches = IndexBatches(len(images), case.batch_size, seed=0)

    def run(i: int) -> int:
        index = batches(i).to(device)
        x = to_float(images[index], case.value_range)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        step(x, labels[index])
        return len(index)

    return run


def dataloader_steps(case: Case, step: StepFn, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                     workers: int, channels_last: bool) -> Callable[[int], int]:
    """The usual path: ``run(i)`` trains on the DataLoader's next batch (a new shuffled epoch when one ends)."""
    with tempfile.TemporaryDirectory(prefix="bench-mnist-") as folder:  # torchvision's MNIST reads its files here
        dataset = usual_dataset(images, labels, case.value_range, Path(folder))
    # as the PyTorch tutorials write it: workers (if any) start afresh each epoch (persistent_workers=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=case.batch_size, shuffle=True, drop_last=True,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    iterator = iter(loader)

    def run(i: int) -> int:
        nonlocal iterator
        try:
            x, y = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            x, y = next(iterator)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        step(x, y)
        return len(x)

    return run


def compare_paths(memory: TimedPath, usual: TimedPath, seconds: float, warmup: int) -> tuple[float, float]:
    """Images per second of both paths, each timed for ``seconds`` in two halves, in the order A B B A."""
    memory.warm_up(warmup)
    usual.warm_up(warmup)
    for path in (memory, usual, usual, memory):
        path.run_for(seconds / 2)
    return memory.images_per_second, usual.images_per_second


# --------------------------------------------------------------------------- FLOPs


def flops_per_image(step: StepFn, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one training step (forward, backward, optimiser) per image, counted by torch's FLOP formulas.

    A plain dispatch mode with ``torch.utils.flop_counter``'s registry: ``FlopCounterMode`` itself tracks
    modules with autograd hooks that ``autograd.grad`` (the WGAN-GP penalty) refuses.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        step(x, y)
    return counter.total / len(x)


def matmul_flops_per_second(device: torch.device, size: int = 1024, repeats: int = 10,
                            dtype: torch.dtype = torch.float32) -> float:
    """This machine's float32 matrix-product speed (the denominator of the utilisation)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


# --------------------------------------------------------------------------- one case, in its own process


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_case(name: str, device: torch.device, seconds: float, warmup: int, workers: int,
             variant: dict, sample_count: int = 1000, profile: str = "quick") -> dict:
    case = PROFILES[profile][name]
    torch.manual_seed(0)
    data = bench_data(case)
    threads = small_model_threads(device)  # as Run.train: one CPU thread, or COURSE_THREADS
    channels_last = bool(variant.get("channels_last")) and case.conv  # the Run's config lays out its own weights
    with threads:
        step, sample, model = case.build(device, variant, data)
        if variant.get("compile"):
            step = torch.compile(step)
        x = to_float(data.images[: case.batch_size], case.value_range).to(device)
        flops = flops_per_image(step, x, data.labels[: case.batch_size].to(device))
        memory, usual = compare_paths(
            TimedPath(in_memory_steps(case, step, data.images, data.labels, device, channels_last), device),
            TimedPath(dataloader_steps(case, step, data.images, data.labels, device, workers, channels_last), device),
            seconds, warmup)
        peak = matmul_flops_per_second(device)
        sample(8)
        _sync(device)
        started = time.perf_counter()
        sample(sample_count)
        _sync(device)
        sampling = sample_count / (time.perf_counter() - started)
        threads_used = torch.get_num_threads()
    return {
        "case": name, "profile": profile, "description": case.description, "device": str(device),
        "batch_size": case.batch_size, "image_shape": list(case.image_shape),
        "variant": variant_label(variant), "threads": threads_used, "workers": workers,
        "in_memory_images_per_s": round(memory, 1), "dataloader_images_per_s": round(usual, 1),
        "ratio": round(memory / usual, 2), "sample_images_per_s": round(sampling, 1),
        "peak_memory_mb": round(peak_memory_mb(device), 1), "train_flops_per_image": flops,
        "matmul_flops_per_s": peak, "utilisation": memory * flops / peak,
    }


def variant_label(variant: dict) -> str:
    parts = [k for k in ("amp", "channels_last", "compile") if variant.get(k)]
    return "+".join(parts) or "fp32"


# --------------------------------------------------------------------------- table and CLI


def format_table(rows: Sequence[dict]) -> str:
    header = ("case", "variant", "in-memory img/s", "DataLoader img/s", "ratio", "sample img/s", "peak MB",
              "MFLOP/img", "util.")
    lines = [header]
    for r in rows:
        lines.append((r["case"], r["variant"], f"{r['in_memory_images_per_s']:.0f}",
                      f"{r['dataloader_images_per_s']:.0f}", f"{r['ratio']:.2f}x", f"{r['sample_images_per_s']:.0f}",
                      f"{r['peak_memory_mb']:.0f}", f"{r['train_flops_per_image'] / 1e6:.2f}",
                      f"{100 * r['utilisation']:.1f}%"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def variants_for(device: torch.device, args: argparse.Namespace, case: Case) -> list[dict]:
    """float32 first, then each requested speed-up added in turn: AMP anywhere (bfloat16 on the CPU),
    channels-last (conv models) and ``torch.compile`` on CUDA."""
    cuda = device.type == "cuda"
    variants, current = [{}], {}
    for flag, wanted in (("amp", args.amp), ("channels_last", args.channels_last and case.conv and cuda),
                         ("compile", args.compile and cuda)):
        if wanted:
            current = {**current, flag: True}
            variants.append(current)
    return variants


def main(argv: Sequence[str] | None = None) -> int:
    parser = CourseArgumentParser(prog="python tools/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"cases to run (default: all of {', '.join(CASES)})")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per path (default 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the usual path (default 0)")
    parser.add_argument("--amp", action="store_true",
                        help="also measure mixed precision (bfloat16 autocast on the CPU, as COURSE_AMP=1 gives)")
    parser.add_argument("--channels-last", action="store_true", help="CUDA: also measure channels-last (conv models)")
    parser.add_argument("--compile", action="store_true", help="CUDA: also measure torch.compile")
    parser.add_argument("--json", default="outputs/bench.json", help="where to write the results")
    parser.add_argument("--profile", choices=list(PROFILES), default="quick",
                        help="quick: the CPU set-ups (default); full: the published conv set-ups (a GPU's job)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--variant", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; known cases: {', '.join(CASES)}")
    if args.seconds <= 0 or args.warmup < 0 or args.workers < 0:
        parser.error("--seconds must be positive, --warmup and --workers not negative")
    try:
        threads = course_threads()
    except ValueError as error:
        parser.error(str(error))
    device = pick_device(args.device)
    if args.one:
        print(json.dumps(run_case(args.one, device, args.seconds, args.warmup, args.workers, json.loads(args.variant),
                                  sample_count=100 if args.profile == "full" else 1000, profile=args.profile)))
        return 0
    rows = []
    for name in args.cases or list(CASES):
        for variant in variants_for(device, args, PROFILES[args.profile][name]):
            print(f"{name} [{variant_label(variant)}] ...", flush=True)
            command = [sys.executable, __file__, "--one", name, "--profile", args.profile,
                       "--device", str(device), "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                       "--workers", str(args.workers),
                       "--variant", json.dumps(variant)]
            # the variant sets the config fields amp and channels_last; COURSE_AMP (utils.devices.autocast's
            # switch over every config) follows it, so that a float32 row is float32 whatever the config says
            env = {**os.environ, "COURSE_AMP": "1" if variant.get("amp") else "0"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"  failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"  {row['in_memory_images_per_s']:.0f} img/s in memory, {row['dataloader_images_per_s']:.0f} "
                  f"through the DataLoader ({row['ratio']:.2f}x)", flush=True)
    print()
    print(format_table(rows))
    cpu_peak = rows[0]["matmul_flops_per_s"] if rows else math.nan
    print(f"\nmatmul speed on {device}: {cpu_peak / 1e9:.1f} GFLOP/s (float32, 1024x1024); "
          f"torch {torch.__version__}; DataLoader workers: {args.workers}"
          + (f"; small models on {threads} CPU threads (COURSE_THREADS)" if device.type == "cpu" else ""))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": str(device), "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"results written to {path}")
    return 0 if rows else 1


if __name__ == "__main__":
    run_cli(main)
