"""fit: resume equals an uninterrupted run, a changed configuration is refused, early stopping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nbhelpers.training.checkpoint import CheckpointMismatch, load_checkpoint
from nbhelpers.training.loop import EarlyStopping, Snapshots, fit

X = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1


class Interrupt(Exception):
    pass


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
    from nbhelpers.data.core import DataSource, TensorImageDataset

    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))

    def data(kind):
        return TensorImageDataset(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long), ["0"],
                                  DataSource("Demo", kind, "somewhere"))

    fit("src", lambda b: {}, data("standin"), batch_size=2, epochs=1, state={}, config={})
    with pytest.raises(CheckpointMismatch, match="data_sources"):
        fit("src", lambda b: {}, data("real"), batch_size=2, epochs=1, state={}, config={})
