"""The README's results table, written from the numbers the course run recorded, never typed by hand.

Every notebook ends with ``utils.report.key_numbers(...)``, which ``make course`` stores in
``outputs/<notebook>.numbers.json``.  After a successful run of the ``quick`` profile, ``utils.course``
copies them into the committed snapshot ``results/quick.json`` (:func:`record`) and rewrites the table in
``README.md`` between the two marker lines from it (:func:`results_table`, :func:`update_readme`).
``tests/test_results.py`` checks that the README's table is exactly the one the snapshot gives, so a hand
edit of the table fails the tests.

Each chapter's "ours" cell is a template over that notebook's numbers; a notebook that has not recorded all
of them reads "not run".  The published column is fixed text: it does not change with our runs.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from utils.config import REPO_ROOT
from utils.files import atomic_write

SNAPSHOT = REPO_ROOT / "results" / "quick.json"
README = REPO_ROOT / "README.md"
BEGIN_MARKER = "<!-- results table: written by make course from results/quick.json -->"
END_MARKER = "<!-- end of results table -->"
HEADER = "| chapter | ours (quick, mnist5k) | published (reference write-up) / best public, other set-up |"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Chapter:
    """One row: the notebook whose numbers fill ``ours`` (a ``str.format`` template; field names are the
    numbers' keys, dots included; a ``%`` format prints a share as ``12.3 %``) and the fixed ``published`` text."""

    notebook: str
    title: str
    ours: str
    published: str


CHAPTERS = (
    Chapter("01_gans", "01 GANs",
            "same budget (2,000 iterations each): classifier-FID vanilla {classifier_fid_vanilla:.2f}, "
            "LSGAN {classifier_fid_lsgan:.2f}, WGAN-GP {classifier_fid_wgan_gp:.2f}; confident digits "
            "{confident_vanilla:.1%} / {confident_lsgan:.1%} / {confident_wgan_gp:.1%}. WGAN-GP's own recipe "
            "(16,000 iterations, weight average): classifier-FID {classifier_fid_wgan_gp_tuned:.2f}, "
            "{confident_wgan_gp_tuned:.1%} confident digits (target 70 %)",
            "Inception FID on CUB 32 px: 173 / 78 / 46; best public 60.97 / 55.23 / 32.41"),
    Chapter("02_autoencoders", "02 autoencoders",
            "test SSIM {ae_z16_test_ssim:.3f} / {ae_z128_test_ssim:.3f} / {ae_z1024_test_ssim:.3f} and "
            "SSE {ae_z16_test_sse:.2f} / {ae_z128_test_sse:.2f} / {ae_z1024_test_sse:.2f} per image "
            "for latent 16 / 128 / 1024",
            "CIFAR-10 set-up, no SSIM published"),
    Chapter("03_vae", "03 VAE, beta-VAE",
            "latent 8: test SSE + KL = {vae_test_recon:.2f} + {vae_test_kl:.2f} per image (beta 1), "
            "{vae_prior_confident:.1%} of its prior samples confident digits (target 50 %); "
            "reconstruction {val_recon_beta0.8:.2f} / {val_recon_beta1:.2f} / {val_recon_beta1.2:.2f} "
            "for beta 0.8 / 1 / 1.2, {val_recon_linear:.2f} linear; "
            "natural-image VAE PCC {natural_pcc:.2f}, SSIM {natural_ssim:.2f}",
            "CIFAR-10, recon loss at epoch 19 for beta 0.8 / 1 / 1.2 / linear: targets < 130 / < 145 / < 155 / "
            "< 125; best public 125.1 / 137.3 / 148.8 / 123.4"),
    Chapter("04_latent_space", "04 latent space",
            "FID general {fid_general_2d:.1f} (2-D) / {fid_general_3d:.1f} (3-D), "
            "marginal {fid_marginal_2d:.1f} / {fid_marginal_3d:.1f}; "
            "IS general {is_general_2d:.2f} / {is_general_3d:.2f}",
            "MNIST, Inception: general FID 112.9 / 107.7, marginal 220.9 / 188.9; IS 5.65 / 6.32"),
    Chapter("05_cvae", "05 CVAE",
            "test loss per image VAE {test_loss_vae_mnist5k:.1f}, CVAE {test_loss_cvae_mnist5k:.1f}; "
            "every label >= {cvae_label_accuracy_min_mnist5k_T1:.0%} of its CVAE samples classified as that "
            "label ({cvae_label_accuracy_min_mnist5k_T0.8:.0%} at T = 0.8)",
            "MNIST (60k, 200 epochs): VAE 148.5, CVAE 131.5; FMNIST 239 / 236; KMNIST 226 / 219.5"),
    Chapter("06_vqvae_dcgan", "06 VQ-VAE",
            "reconstruction SSIM {recon_ssim:.3f} (whole test split); perplexity {codebook_perplexity:.1f}, "
            "{codes_used} codes used; best prior-sample SSIM to a real image {best_sample_ssim:.3f}; "
            "confident digits: label-conditional PixelCNN {confident_share_pixelcnn:.1%}, "
            "unconditional DCGAN {confident_share_dcgan:.1%}",
            "OASIS: best sample SSIM 0.2666; public reconstruction SSIM 0.70"),
)


class _NumbersFormatter(string.Formatter):
    """``str.format`` whose field names are whole keys (``val_recon_beta0.8`` is one key, not an attribute)."""

    def get_field(self, field_name, args, kwargs):
        return kwargs[field_name], field_name

    def format_field(self, value, format_spec):
        try:
            text = format(value, format_spec)
        except (TypeError, ValueError):  # a number recorded as text ("nan") is shown as it is
            return str(value)
        return text[:-1] + " %" if format_spec.endswith("%") else text


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def ours_cell(chapter: Chapter, numbers: Mapping[str, object] | None) -> str:
    """The chapter's "ours" text from its notebook's numbers; "not run" without them or with some missing."""
    if numbers is None:
        return NOT_RUN
    missing = [name for name in _fields(chapter.ours) if name not in numbers]
    if missing:
        return f"{NOT_RUN} (no {', '.join(missing)} in {chapter.notebook}.numbers.json)"
    return _NumbersFormatter().vformat(chapter.ours, (), numbers)


def results_table(numbers: Mapping[str, Mapping[str, object]]) -> str:
    """The README's Markdown table, one row per chapter, from ``{notebook stem: its numbers}``."""
    rows = [f"| {c.title} | {ours_cell(c, numbers.get(c.notebook))} | {c.published} |" for c in CHAPTERS]
    return "\n".join([HEADER, "|---|---|---|", *rows])


def collect(outputs_dir: str | Path) -> dict[str, dict]:
    """``{notebook stem: numbers}`` from every ``NN_*.numbers.json`` in ``outputs_dir``."""
    suffix = ".numbers.json"
    return {path.name[:-len(suffix)]: json.loads(path.read_text())
            for path in sorted(Path(outputs_dir).glob(f"[0-9][0-9]_*{suffix}"))}


def write_snapshot(numbers: Mapping[str, Mapping[str, object]], path: str | Path) -> Path:
    """Write all notebooks' numbers to one JSON file (sorted keys, indent 2), atomically."""
    path = Path(path)
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")
    return path


def read_snapshot(path: str | Path) -> dict[str, dict]:
    return json.loads(Path(path).read_text())


def _split(text: str, where: str | Path) -> tuple[str, str, str]:
    """``text`` as (up to and including the begin marker line, between the markers, from the end marker line)."""
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.strip() == BEGIN_MARKER]
    end = [i for i, line in enumerate(lines) if line.strip() == END_MARKER]
    if len(begin) != 1 or len(end) != 1 or begin[0] > end[0]:
        raise ValueError(f"{where}: expected one line {BEGIN_MARKER!r} followed by one line {END_MARKER!r} "
                         f"around the results table (found {len(begin)} and {len(end)})")
    return "".join(lines[:begin[0] + 1]), "".join(lines[begin[0] + 1:end[0]]), "".join(lines[end[0]:])


def readme_table(readme_path: str | Path = README) -> str:
    """The text between the README's markers, without the blank lines around it."""
    return _split(Path(readme_path).read_text(encoding="utf-8"), readme_path)[1].strip("\n")


def update_readme(readme_path: str | Path, table: str) -> None:
    """Replace the text between the marker lines of ``readme_path`` with ``table`` (a blank line either side).

    ``ValueError`` when the file does not have the two markers, in order, once each; the file is then unchanged.
    """
    readme_path = Path(readme_path)
    before, _, after = _split(readme_path.read_text(encoding="utf-8"), readme_path)
    with atomic_write(readme_path) as temporary:
        temporary.write_text(f"{before}\n{table.strip()}\n\n{after}", encoding="utf-8")


def record(outputs_dir: str | Path, notebooks: Iterable[str] | None = None, snapshot: str | Path | None = None,
           readme: str | Path | None = None) -> dict[str, dict]:
    """Write the snapshot from ``outputs_dir``'s numbers and the README table from the snapshot; return it.

    ``notebooks=None``: a run of every notebook, whose numbers replace the snapshot.  A list of notebook stems:
    a run of those only, whose numbers replace theirs in the existing snapshot (a notebook of the list that
    recorded nothing leaves it) while the other notebooks' numbers stay.  ``snapshot`` and ``readme`` default
    to ``results/quick.json`` and ``README.md``.
    """
    snapshot = Path(snapshot or SNAPSHOT)
    readme = Path(readme or README)
    found = collect(outputs_dir)
    if notebooks is None:
        numbers = found
    else:
        numbers = read_snapshot(snapshot) if snapshot.exists() else {}
        for stem in notebooks:
            numbers.pop(stem, None)
            if stem in found:
                numbers[stem] = found[stem]
    write_snapshot(numbers, snapshot)
    update_readme(readme, results_table(numbers))
    return numbers
