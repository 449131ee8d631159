"""NBH_MAX_STEPS and NBH_MAX_EVAL_ITEMS: one setting each, obeyed by fit and by every inference helper."""

import pytest
import torch
from torch.utils.data import TensorDataset

from nbhelpers import settings
from nbhelpers import vae_anomaly as anomaly
from nbhelpers.data.core import DataSource, TensorImageDataset
from nbhelpers.models.conv_vae import ConvVAE
from nbhelpers.models.dcgan import Generator
from nbhelpers.models.endovae import EndoVAE
from nbhelpers.models.pix2pix import UNetGenerator
from nbhelpers.models.resnet import SmallResNet
from nbhelpers.training import autoencoder, gan, pix2pix, supervised
from nbhelpers.training.checkpoint import CheckpointMismatch
from nbhelpers.training.inference import eval_batches, evaluated
from nbhelpers.training.loop import fit


def test_caps_are_unset_by_default_and_read_from_the_environment():
    plain = settings.current({"NBH_DEVICE": "cpu"})
    assert plain.max_steps is None and plain.max_eval_items is None
    capped = settings.current({"NBH_DEVICE": "cpu", "NBH_MAX_STEPS": "2", "NBH_MAX_EVAL_ITEMS": " 64 "})
    assert (capped.max_steps, capped.max_eval_items) == (2, 64)


@pytest.mark.parametrize("var", ["NBH_MAX_STEPS", "NBH_MAX_EVAL_ITEMS"])
@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_a_bad_cap_is_refused_with_the_variable_and_the_fix(var, value):
    with pytest.raises(settings.SettingsError, match=f"{var}=.*Fix: export {var}="):
        settings.current({"NBH_DEVICE": "cpu", var: value})


def test_the_evaluated_items_are_all_or_an_evenly_spread_few(monkeypatch):
    labels = torch.tensor([0] * 6 + [1] * 4)  # sorted by class, as some loaders return them
    assert torch.equal(evaluated(labels), labels)
    monkeypatch.setenv("NBH_MAX_EVAL_ITEMS", "4")
    assert evaluated(labels).tolist() == [0, 0, 1, 1]  # items 0, 3, 6, 9: both classes
    assert evaluated(list(range(10))) == [0, 3, 6, 9]
    assert len(evaluated(labels[:4])) == 4  # a set within the cap is evaluated whole
    monkeypatch.setenv("NBH_MAX_EVAL_ITEMS", "3")
    assert evaluated(list(range(10))) == [0, 4, 8]


def test_eval_batches_walk_tensors_and_datasets_alike(monkeypatch):
    x = torch.arange(10.0).view(10, 1)
    ds = TensorDataset(x, torch.arange(10))
    assert [b.view(-1).tolist() for b in eval_batches(x, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    monkeypatch.setenv("NBH_MAX_EVAL_ITEMS", "4")
    assert [b.view(-1).tolist() for b in eval_batches(x, 3)] == [[0, 3, 6], [9]]
    [(images, labels), (last_images, last_labels)] = list(eval_batches(ds, 3))
    assert labels.tolist() == [0, 3, 6] and last_labels.tolist() == [9]


def linear_run(name, epochs=3):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        loss = model(batch[0]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    data = TensorDataset(torch.randn(16, 2, generator=torch.Generator().manual_seed(0)))
    return fit(name, step, data, batch_size=4, epochs=epochs, state={"model": model, "opt": opt}, config={})


def test_fit_stops_at_the_step_cap_and_a_capped_checkpoint_never_passes_for_a_whole_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("NBH_MAX_STEPS", "2")
    history = linear_run("capped")
    assert history.steps["step"].tolist() == [1, 2]
    assert history.epochs["step"].tolist() == [2]  # the run ends evaluated, as a finished one does
    monkeypatch.delenv("NBH_MAX_STEPS")
    with pytest.raises(CheckpointMismatch, match="step_cap"):
        linear_run("capped")
    assert len(linear_run("uncapped").steps) == 12  # 3 epochs of 4 batches: the cap is gone


def labelled_images(n, size=32):
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    return TensorImageDataset(images, torch.arange(n) % 3, list("abc"), DataSource("x", "standin", "test"))


def test_every_inference_helper_runs_only_the_evaluated_items(monkeypatch):
    monkeypatch.setenv("NBH_MAX_EVAL_ITEMS", "4")
    ds = labelled_images(10)
    clf = SmallResNet(3, 3, width=8, blocks=(1, 1, 1))
    predicted, labels = supervised.classify(clf, ds, batch_size=3)
    assert len(supervised.predict(clf, ds)) == len(supervised.extract_features(clf, ds)) == 4
    assert labels.tolist() == [0, 0, 0, 0]  # items 0, 3, 6, 9 of labels 0, 1, 2, 0, ...: paired with them
    assert len(predicted) == 4
    G = Generator(8, 3, 32, 8, n_classes=3)
    assert gan.generate(G, torch.randn(10, 8), torch.arange(10) % 3, batch_size=3).shape == (4, 3, 32, 32)
    fed, out = autoencoder.reconstruct(torch.nn.Identity(), torch.arange(10.0).view(10, 1), batch_size=3)
    assert fed.view(-1).tolist() == out.view(-1).tolist() == [0, 3, 6, 9]
    assert len(autoencoder.reconstruction_errors(torch.nn.Identity(), torch.rand(10, 5))) == 4
    pairs = TensorDataset(torch.rand(10, 3, 16, 16), torch.rand(10, 3, 16, 16))
    xs, ys, outs = pix2pix.translate_pairs(UNetGenerator(16, base=8), pairs, batch_size=3)
    assert torch.equal(xs, pairs.tensors[0][::3]) and len(ys) == len(outs) == 4
    vae = ConvVAE(channels=3, image_size=32, latent_dim=4, width=8)
    result = anomaly.run_vae(vae, ds, elbo_samples=1, batch_size=3)
    assert torch.equal(result.labels, ds.labels[::3]) and result.images.shape[0] == result.mu.shape[0] == 4
    levels = anomaly.encoder_statistics(EndoVAE(4, image_size=32), ds.tensors()[0], batch_size=3)
    assert {len(level) for level in levels} == {4}
