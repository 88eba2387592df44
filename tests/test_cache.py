import math

import numpy as np
import pytest
import torch

from utils import cache
from utils.cache import fingerprint, load_or_compute


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_hit_returns_stored_value_without_computing(tmp_path):
    path = tmp_path / "scores.pt"
    compute, calls = counting({"fid": np.float64(12.5), "counts": torch.arange(10), "per": {3: float("nan")}})
    first = load_or_compute(path, {"seed": 0, "n": 100}, compute)
    second = load_or_compute(path, {"seed": 0, "n": 100}, compute)
    assert len(calls) == 1
    assert type(first["fid"]) is float and first["fid"] == second["fid"] == 12.5
    assert torch.equal(second["counts"], torch.arange(10)) and math.isnan(second["per"][3])


def test_changed_key_or_refresh_recomputes(tmp_path):
    path = tmp_path / "scores.pt"
    assert load_or_compute(path, {"seed": 0}, lambda: 1) == 1
    assert load_or_compute(path, {"seed": 1}, lambda: 2) == 2  # another key: computed and stored
    assert load_or_compute(path, {"seed": 1}, lambda: 3) == 2
    assert load_or_compute(path, {"seed": 1}, lambda: 4, refresh=True) == 4
    assert load_or_compute(path, {"seed": 1}, lambda: 5) == 4


def test_damaged_file_is_a_miss(tmp_path):
    path = tmp_path / "scores.pt"
    path.write_bytes(b"not a torch file")
    assert load_or_compute(path, {"seed": 0}, lambda: [1, 2]) == [1, 2]
    assert load_or_compute(path, {"seed": 0}, lambda: [3]) == [1, 2]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "scores.pt"
    load_or_compute(path, {"seed": 0}, lambda: "old")

    def broken_save(obj, f, *args, **kwargs):
        open(f, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        load_or_compute(path, {"seed": 1}, lambda: "new")
    monkeypatch.undo()
    assert load_or_compute(path, {"seed": 0}, lambda: "recomputed") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.pt"]  # no temporary file left behind


def test_fingerprint_follows_the_weights():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    assert fingerprint(a) == fingerprint(a) != fingerprint(b)
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b)
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a, b) != fingerprint(b, a)
    assert len(cache.fingerprint(torch.nn.Linear(2, 2).to(torch.bfloat16))) == 16
