"""fit: resume equals an uninterrupted run; another run's or a damaged checkpoint is refused; early stopping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset, TensorDataset

from nbhelpers import settings
from nbhelpers.data.core import DataSource, TensorImageDataset
from nbhelpers.training.checkpoint import CheckpointMismatch, config_fingerprint, load_checkpoint
from nbhelpers.training.loop import EarlyStopping, Snapshots, fit

X = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1


class Interrupt(Exception):
    pass


@pytest.fixture(autouse=True)
def _no_knobs_from_other_tests(monkeypatch):
    """Knobs read by another test's setup() must not enter these runs' fingerprints."""
    monkeypatch.setattr(settings, "_TRACKED", set())
    monkeypatch.setattr(settings, "_READ", {})


def run(tmp_path, monkeypatch, *, interrupt_at=None, config=None, epochs=3, seed=0):
    """Train a linear model whose step draws noise from the global RNG, as dropout or z would."""
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    snaps = Snapshots()
    calls = {"n": 0}

    def step(batch):
        x, y = batch
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise Interrupt
        noise = 0.01 * torch.randn_like(y)
        loss = F.mse_loss(model(x).squeeze(1), y + noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    history = fit("toy", step, TensorDataset(X, Y), batch_size=8, epochs=epochs,
                  state={"model": model, "opt": opt, "sched": sched, "snaps": snaps},
                  config=config or {"lr": 0.05},
                  evaluate=lambda: {"val": F.mse_loss(model(X).squeeze(1), Y).item()},
                  on_epoch_end=lambda e: snaps.add(e, model.weight.detach().view(1, 1, 1, 4)),
                  checkpoint_seconds=0.0)
    return model, opt, history, snaps


def test_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    ref_model, ref_opt, ref_hist, ref_snaps = run(tmp_path / "a", monkeypatch)
    with pytest.raises(Interrupt):
        run(tmp_path / "b", monkeypatch, interrupt_at=8)  # mid-epoch 2: 5 steps per epoch
    assert load_checkpoint(tmp_path / "b" / "toy.pt")["step"] == 7
    # A different seed proves the RNG state comes from the checkpoint, not from the caller.
    model, opt, hist, snaps = run(tmp_path / "b", monkeypatch, seed=123)
    assert torch.equal(model.weight, ref_model.weight) and torch.equal(model.bias, ref_model.bias)
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] == 0.05 * 0.5 ** 3
    assert hist.steps["loss"].tolist() == ref_hist.steps["loss"].tolist()
    assert hist.epochs["val"].tolist() == ref_hist.epochs["val"].tolist()
    assert len(hist.steps) == 15 and len(hist.epochs) == 3
    assert [s for s, _ in snaps.items] == [0, 1, 2]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(snaps.items, ref_snaps.items, strict=True))


def test_finished_run_returns_without_training(tmp_path, monkeypatch):
    ref_model, _, ref_hist, _ = run(tmp_path, monkeypatch)
    model, _, hist, _ = run(tmp_path, monkeypatch, interrupt_at=1, seed=5)  # would raise if it trained
    assert torch.equal(model.weight, ref_model.weight)
    assert len(hist.steps) == len(ref_hist.steps)


def test_changed_configuration_refuses_to_resume(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch)
    with pytest.raises(CheckpointMismatch, match=r"lr: 0.05 -> 0.1") as err:
        run(tmp_path, monkeypatch, config={"lr": 0.1})
    assert "toy.pt" in str(err.value) and "delete" in str(err.value)
    with pytest.raises(CheckpointMismatch, match="epochs"):
        run(tmp_path, monkeypatch, epochs=4)


def test_corrupt_checkpoint_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "toy.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatch, match="toy.pt"):
        run(tmp_path, monkeypatch)


def test_no_partial_checkpoint_files_remain(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.pt"]


def test_early_stopping_stops_and_restores_best(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scores = iter([3.0, 1.0, 2.0, 2.5, 4.0, 5.0])
    best_weight = {}

    def step(batch):
        with torch.no_grad():
            model.weight += 1.0
        return {"w": model.weight.item()}

    def evaluate():
        value = next(scores)
        if value == 1.0:
            best_weight["w"] = model.weight.item()
        return {"val": value}

    stopper = EarlyStopping("val", patience=2)
    data = TensorDataset(torch.zeros(4, 1))
    hist = fit("es", step, data, batch_size=4, epochs=10, state={"m": model, "opt": opt},
               config={}, evaluate=evaluate, early_stopping=stopper)
    assert len(hist.epochs) == 4  # best at evaluation 2, then 2 without improvement
    assert model.weight.item() == best_weight["w"]


def test_plateau_scheduler_steps_on_the_named_metric(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    fit("plateau", lambda b: {"x": 0.0}, TensorDataset(torch.zeros(2, 1)), batch_size=2, epochs=3,
        state={"m": model, "opt": opt, "plateau": plateau}, config={},
        evaluate=lambda: {"val": 1.0}, plateau_metric="val")
    assert opt.param_groups[0]["lr"] == 0.25  # no improvement after the first of three evaluations


def test_zipped_datasets_give_one_batch_of_each(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    seen = []
    source = TensorDataset(torch.arange(10.0).view(-1, 1))
    target = TensorDataset(torch.arange(100.0, 103.0).view(-1, 1))
    fit("zip", lambda b: seen.append(b) or {}, (source, target), batch_size=5, epochs=1,
        state={}, config={})
    assert len(seen) == 2
    (src,), (tgt,) = seen[0]
    assert src.shape == tgt.shape == (5, 1)
    assert sorted(torch.cat([b[0][0] for b in seen]).view(-1).tolist()) == list(range(10))
    assert tgt.min() >= 100


def test_eval_every_and_the_last_step_evaluate_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    calls = []
    hist = fit("evals", lambda b: {}, TensorDataset(torch.zeros(20, 1)), batch_size=2, epochs=1,
               state={}, config={}, evaluate=lambda: calls.append(1) or {"v": 1.0}, eval_every=3, max_steps=6)
    assert hist.epochs["step"].tolist() == [3, 6] and len(calls) == 2


def test_finished_early_stopped_run_reloads_the_best_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))

    def train():
        model = nn.Linear(1, 1, bias=False)
        scores = iter([2.0, 1.0, 3.0, 4.0])

        def step(batch):
            with torch.no_grad():
                model.weight += 1.0
            return {}

        fit("es2", step, TensorDataset(torch.zeros(2, 1)), batch_size=2, epochs=10,
            state={"m": model}, config={}, evaluate=lambda: {"val": next(scores)},
            early_stopping=EarlyStopping("val", patience=2))
        return model.weight.item()

    first = train()
    assert train() == first  # the resumed, finished run restores the best weights too


def test_a_standin_checkpoint_never_resumes_on_real_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    fit("src", lambda b: {}, demo_data("standin"), batch_size=2, epochs=1, state={}, config={})
    with pytest.raises(CheckpointMismatch, match="data_sources"):
        fit("src", lambda b: {}, demo_data("real"), batch_size=2, epochs=1, state={}, config={})


@pytest.mark.parametrize("interrupt_at", [None, 8], ids=["finished", "half-finished"])
def test_another_seed_refuses_the_checkpoint(tmp_path, monkeypatch, interrupt_at):
    monkeypatch.setenv("NBH_SEED", "0")
    if interrupt_at:
        with pytest.raises(Interrupt):
            run(tmp_path, monkeypatch, interrupt_at=interrupt_at)
    else:
        run(tmp_path, monkeypatch)
    monkeypatch.setenv("NBH_SEED", "1")
    with pytest.raises(CheckpointMismatch, match="seed: 0 -> 1") as err:
        run(tmp_path, monkeypatch, interrupt_at=1)  # would raise Interrupt if it trained
    assert "python -m nbhelpers run --fresh" in str(err.value) and str(tmp_path / "toy.pt") in str(err.value)


def test_another_profile_refuses_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_PROFILE", "smoke")
    run(tmp_path, monkeypatch)
    monkeypatch.setenv("NBH_PROFILE", "cpu")
    with pytest.raises(CheckpointMismatch, match="profile: 'smoke' -> 'cpu'"):
        run(tmp_path, monkeypatch)


def demo_data(kind="standin", location="generated", n=4):
    return TensorImageDataset(torch.zeros(n, 1, 2, 2), torch.zeros(n, dtype=torch.long), ["0"],
                              DataSource("Demo", kind, location))


@pytest.mark.parametrize("other,changed", [
    (lambda: demo_data(location="elsewhere"), "'location': 'elsewhere'"),
    (lambda: demo_data(n=6), "'n': 6"),
    (lambda: Subset(demo_data("real"), range(4)), "'kind': 'real'"),  # the source is found under a Subset
], ids=["location", "size", "subset-of-real"])
def test_data_location_and_size_are_part_of_the_run(tmp_path, monkeypatch, other, changed):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    fit("src", lambda b: {}, demo_data(), batch_size=2, epochs=1, state={}, config={})
    with pytest.raises(CheckpointMismatch, match="data_sources") as err:
        fit("src", lambda b: {}, other(), batch_size=2, epochs=1, state={}, config={})
    assert changed in str(err.value)


KNOBS = {"lr": 0.05, "n_show": 8, "width": 4}


def knob_run(tmp_path, monkeypatch, before_fit, after_fit=(), **changed):
    """A notebook session: setup(), read ``before_fit`` knobs, train, then read ``after_fit``."""
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    P = settings.setup({p: {**KNOBS, **changed} for p in settings.PROFILES})
    values = [getattr(P, k) for k in before_fit]
    fit("knobs", lambda b: {}, TensorDataset(torch.zeros(4, 1)), batch_size=2, epochs=1, state={},
        config={})
    return values + [getattr(P, k) for k in after_fit]


def test_knobs_read_before_fit_are_part_of_the_run(tmp_path, monkeypatch):
    knob_run(tmp_path, monkeypatch, ["lr", "device", "seed"], after_fit=["n_show"])
    assert settings.knobs_read() == {"lr": 0.05, "n_show": 8}  # profile knobs only, as read
    with pytest.raises(CheckpointMismatch, match=r"P\.lr: 0\.05 -> 0\.1"):
        knob_run(tmp_path, monkeypatch, ["lr"], lr=0.1)
    # Read only after training the first time, n_show never forces a retrain, even when read
    # before fit now; nor does a knob the first run never read (width).
    knob_run(tmp_path, monkeypatch, ["n_show", "width", "lr"], n_show=4, width=16)


def old_checkpoint(path):
    """What nbhelpers wrote before checkpoints held a digest, the seed, the profile and the data."""
    payload = load_checkpoint(path)
    payload["config"] = config_fingerprint({"batch_size": 8, "epochs": 3, "max_steps": None,
                                            "data_sources": [], "lr": 0.05})
    payload.pop("knobs")
    torch.save(payload, path)


def test_an_old_checkpoint_is_refused_with_the_fix(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch)
    old_checkpoint(tmp_path / "toy.pt")
    with pytest.raises(CheckpointMismatch, match="older nbhelpers") as err:
        run(tmp_path, monkeypatch, interrupt_at=1)
    assert f"python -m nbhelpers run --fresh, or delete {tmp_path / 'toy.pt'}" in str(err.value)


def test_a_damaged_checkpoint_is_moved_aside_and_the_run_trains_afresh(tmp_path, monkeypatch):
    ref_model, *_ = run(tmp_path / "ref", monkeypatch)
    with pytest.raises(Interrupt):
        run(tmp_path, monkeypatch, interrupt_at=8)
    path = tmp_path / "toy.pt"
    damaged = bytearray(path.read_bytes())
    middle, n = len(damaged) // 2, min(3072, len(damaged) // 3)
    damaged[middle - n // 2:middle + n // 2] = bytes(n - n % 2)  # 3 KB of zeros over the middle
    path.write_bytes(damaged)
    with pytest.warns(UserWarning, match="toy.pt is damaged") as caught:
        model, _, hist, _ = run(tmp_path, monkeypatch)
    (aside,) = tmp_path.glob("toy.pt.damaged-*")
    assert str(aside) in str(caught[0].message) and "trains afresh" in str(caught[0].message)
    assert aside.read_bytes() == damaged  # kept as it was, for whoever wants to look
    assert torch.equal(model.weight, ref_model.weight) and len(hist.steps) == 15  # all 15 steps again
    assert load_checkpoint(path)["finished"]


def test_partial_files_of_a_killed_save_are_removed(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch)
    stale = tmp_path / ".toy.pt.k1ll3d_x.part"  # what atomic_path leaves when the process is killed
    stale.write_bytes(bytes(1000))
    run(tmp_path, monkeypatch, interrupt_at=1)  # a finished run: it trains and saves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.pt"]
