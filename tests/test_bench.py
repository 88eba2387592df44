"""The benchmark's parts: both data paths feed the same images, the table, one case end to end, bad input."""

from __future__ import annotations

import pytest
import torch
from cli_checks import load_tool

from utils.cli import run_cli
from utils.data import to_float

bench = load_tool("bench")  # tools/bench.py: a script outside the library
CASES, TimedPath, TorchvisionStyleDataset = bench.CASES, bench.TimedPath, bench.TorchvisionStyleDataset
compare_paths, flops_per_image, format_table = bench.compare_paths, bench.flops_per_image, bench.format_table
main, run_case, usual_dataset = bench.main, bench.run_case, bench.usual_dataset


def test_usual_path_gives_the_same_floats_as_the_in_memory_path():
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(6)
    for value_range in [(0.0, 1.0), (-1.0, 1.0)]:
        dataset = TorchvisionStyleDataset(images, labels, value_range)
        x, y = dataset[4]
        assert y == 4
        torch.testing.assert_close(x, to_float(images[4], value_range), atol=1e-6, rtol=0)
    rgb = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    x, _ = TorchvisionStyleDataset(rgb, torch.zeros(2), (-1.0, 1.0))[1]
    torch.testing.assert_close(x, to_float(rgb[1], (-1.0, 1.0)), atol=1e-6, rtol=0)


def test_usual_path_for_digits_is_torchvisions_mnist_on_the_same_images(tmp_path):
    from torchvision.datasets import MNIST

    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([3, 1, 4, 1, 5])
    dataset = usual_dataset(images, labels, (-1.0, 1.0), tmp_path)
    assert isinstance(dataset, MNIST) and len(dataset) == 5
    x, y = dataset[2]
    assert y == 4
    torch.testing.assert_close(x, to_float(images[2], (-1.0, 1.0)), atol=1e-6, rtol=0)
    assert not isinstance(usual_dataset(images[:, :, :8, :8], labels, (0.0, 1.0), tmp_path), MNIST)


def test_flop_count_of_a_linear_layer_step():
    layer = torch.nn.Linear(10, 5, bias=False)

    def step(x, y):
        layer(x).sum().backward()

    # forward 2*10*5 per row; backward: grad wrt weight only (input needs no grad) 2*10*5
    assert flops_per_image(step, torch.randn(4, 10), torch.zeros(4)) == pytest.approx(200)


def test_one_case_end_to_end_reports_every_figure():
    row = run_case("cvae", torch.device("cpu"), seconds=0.2, warmup=1, workers=0, variant={}, sample_count=50)
    for key in ("in_memory_images_per_s", "dataloader_images_per_s", "sample_images_per_s", "peak_memory_mb",
                "train_flops_per_image", "matmul_flops_per_s"):
        assert row[key] > 0, key
    assert row["ratio"] == pytest.approx(row["in_memory_images_per_s"] / row["dataloader_images_per_s"], rel=0.02)
    assert 0 < row["utilisation"] < 5
    table = format_table([row])
    assert "cvae" in table and "ratio" in table


def test_unknown_case_exits_2_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, ["no_such_case"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no_such_case" in err and all(name in err for name in CASES)


def test_bad_course_threads_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_THREADS", "many")
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, ["cvae"])
    assert exit_.value.code == 2 and "COURSE_THREADS" in capsys.readouterr().err


def test_paths_take_turns_a_b_b_a():
    order = []

    def runner(name):
        def run(i):
            order.append(name)
            return 2
        return run

    memory, usual = TimedPath(runner("memory"), torch.device("cpu")), TimedPath(runner("usual"), torch.device("cpu"))
    fast, slow = compare_paths(memory, usual, seconds=0.002, warmup=1)
    timed = [name for i, name in enumerate(order) if i >= 2]  # after one warm-up step each
    runs = [timed[0]] + [b for a, b in zip(timed, timed[1:], strict=False) if a != b]
    assert runs == ["memory", "usual", "memory"]  # memory, then usual twice in a row, then memory
    assert fast > 0 and slow > 0 and memory.step % 5 == 0 and usual.step % 5 == 0


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_trains_through_its_familys_own_step(name):
    """The timed step is the family's Run.step: one call moves the networks' weights, and the sampler draws."""
    case = CASES[name]
    step, sample, networks = case.build(torch.device("cpu"), {}, bench.bench_data(case))
    before = [p.detach().clone() for p in networks.parameters()]
    x = to_float(bench.bench_data(case).images[: case.batch_size], case.value_range)
    step(x, torch.arange(len(x)) % 10)
    assert any(not torch.equal(a, b) for a, b in zip(before, networks.parameters(), strict=True))
    assert len(sample(3)) == 3
