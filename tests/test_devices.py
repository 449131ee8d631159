"""The GPU path without a GPU: what fails on a device mismatch is made to run here.

Two stand-ins for a GPU, each where it works:

- **meta** tensors for the training steps: they run forward and backward without data, and
  mixing them with CPU tensors raises "Tensor on device cpu is not on the expected device meta",
  as mixing CUDA and CPU tensors does. ``.item()`` cannot read a meta tensor, so it returns 0.5.
- **fake CUDA tensors** (``FakeTensorMode``) for the inference helpers: they carry the device
  ``cuda:0`` on a machine without CUDA, refuse to meet CPU tensors in one operation, and can be
  copied back with ``.cpu()``; their autograd cannot run without a driver, hence meta above.

Plus the decisions the GPU path takes (loader workers, pinned memory, autocast), unit-tested
on their inputs, and a scan of the sources for what no run here could reveal.
"""

import ast
import json
import multiprocessing
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers import vae_anomaly as anomaly
from nbhelpers.data.core import DataSource, TensorImageDataset
from nbhelpers.editions import taught
from nbhelpers.models import dcgan
from nbhelpers.models.autoencoders import DenoisingConvAutoencoder
from nbhelpers.models.conv_vae import ConvVAE
from nbhelpers.models.endovae import EndoVAE
from nbhelpers.models.pix2pix import PatchDiscriminator, UNetGenerator
from nbhelpers.models.resnet import SmallResNet
from nbhelpers.training import autoencoder, gan, pix2pix, supervised, vae, wgan
from nbhelpers.training.device import autocast, autocast_dtype, loader_options, module_device
from nbhelpers.training.loop import _batches, fit

REPO = Path(__file__).resolve().parent.parent
gan_step = taught("05", "gan_step")  # notebook 05's exercise 5.1
META = torch.device("meta")


@pytest.fixture
def meta(monkeypatch):
    """Build models under ``with torch.device(meta)``; a step's ``.item()`` reads 0.5."""
    monkeypatch.setattr(torch.Tensor, "item", lambda self: 0.5)
    return META


def rand(*shape):
    return torch.rand(*shape, device=META)


def assert_floats(logs, keys):
    assert set(logs) >= set(keys) and all(isinstance(v, float) for v in logs.values())


def test_gan_and_cgan_steps_stay_on_the_batch_device(meta):
    with meta:
        G, D = dcgan.Generator(16, 3, 32, 8), dcgan.Discriminator(3, 32, 8)
        Gc, Dc = dcgan.Generator(16, 3, 32, 8, n_classes=4), dcgan.Discriminator(3, 32, 8, n_classes=4)
    opts = [torch.optim.Adam(m.parameters()) for m in (G, D, Gc, Dc)]
    assert_floats(gan_step(G, D, *opts[:2], rand(8, 3, 32, 32), latent_dim=16), ["loss_d", "d_fake"])
    labels = torch.randint(4, (8,), device=META)
    assert_floats(gan_step(Gc, Dc, *opts[2:], rand(8, 3, 32, 32), latent_dim=16, labels=labels), ["loss_g"])


def test_the_check_itself_catches_a_cpu_batch(meta):
    with meta:
        G, D = dcgan.Generator(16, 3, 32, 8), dcgan.Discriminator(3, 32, 8)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with pytest.raises(RuntimeError, match="device"):
        gan_step(G, D, opt_g, opt_d, torch.rand(8, 3, 32, 32), latent_dim=16)


def test_wgan_gp_step_stays_on_the_batch_device(meta):
    with meta:
        G, C = dcgan.Generator(16, 3, 32, 8), dcgan.Discriminator(3, 32, 8, norm="layer")
    opt_g, opt_c = torch.optim.Adam(G.parameters()), torch.optim.Adam(C.parameters())
    logs = wgan.wgan_gp_step(G, C, opt_g, opt_c, rand(10, 3, 32, 32), latent_dim=16, n_critic=5,
                             critic_loss=taught("03", "wgan_critic_loss"),
                             generator_loss=taught("03", "wgan_generator_loss"))
    assert_floats(logs, ["loss_c", "gp", "wasserstein", "loss_g"])


@pytest.mark.parametrize("recon", ["bce", "mse"])
def test_vae_step_and_elbo_stay_on_the_batch_device(meta, recon):
    with meta:
        model = EndoVAE(16, image_size=32)
    opt = torch.optim.Adam(model.parameters())
    x = rand(4, 3, 32, 32)
    assert_floats(vae.vae_step(model, opt, x, recon=recon, clip_norm=1.0), ["loss", "recon", "kl"])
    assert vae.negative_elbo(model, x, recon=recon, samples=2).device == META


def test_classifier_autoencoder_and_pix2pix_steps_stay_on_the_batch_device(meta):
    with meta:
        clf, dn = SmallResNet(3, 5, width=8, blocks=(1, 1, 1)), DenoisingConvAutoencoder()
        G, D = UNetGenerator(32, base=8), PatchDiscriminator(base=8)
    opt = torch.optim.Adam(clf.parameters())
    assert_floats(supervised.classifier_step(clf, opt, rand(4, 3, 32, 32), torch.randint(5, (4,), device=META)),
                  ["loss", "acc"])
    clean = rand(4, 1, 28, 28)
    opt_dn = torch.optim.Adam(dn.parameters())
    assert_floats(autoencoder.reconstruction_step(dn, opt_dn, clean), ["loss"])
    opt_g, opt_d = pix2pix.make_optimizers(G, D)
    x, y = rand(2, 3, 32, 32) * 2 - 1, rand(2, 3, 32, 32) * 2 - 1
    generator_loss = taught("04", "generator_loss")
    assert_floats(pix2pix.pix2pix_step(G, D, opt_g, opt_d, x, y, generator_loss=generator_loss),
                  pix2pix.LOSS_KEYS)
    assert_floats(pix2pix.pix2pix_step(G, None, opt_g, None, x, y, generator_loss=generator_loss,
                                       l1_only=True), ["gen_l1_loss"])


# --- inference helpers: model on a (fake) GPU, data on the CPU, results back on the CPU ----------

@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA device without CUDA. ``fork_rng`` saves and restores CUDA RNG states, which need a driver."""
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.zeros(16, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": None)
    with FakeTensorMode(allow_non_fake_inputs=True):
        yield torch.device("cuda")


def on_cpu(*tensors):
    return all(t.device.type == "cpu" for t in tensors)


def test_classifier_inference_follows_the_model_and_returns_cpu_tensors(fake_cuda):
    with fake_cuda:
        clf = SmallResNet(3, 5, width=8, blocks=(1, 1, 1))
    assert module_device(clf).type == "cuda"
    images = torch.zeros(6, 3, 32, 32, dtype=torch.uint8)
    ds = TensorImageDataset(images, torch.arange(6) % 5, list("abcde"), DataSource("x", "standin", "test"))
    logits = supervised.predict(clf, ds, batch_size=4)
    feats = supervised.extract_features(clf, images.float(), batch_size=4)
    predicted, labels = supervised.classify(clf, ds, batch_size=4)
    assert logits.shape == (6, 5) and feats.shape == (6, clf.feature_dim) and predicted.shape == (6,)
    assert on_cpu(logits, feats, predicted, labels)


def test_generation_reconstruction_and_translation_return_cpu_tensors(fake_cuda):
    with fake_cuda:
        G, dn, U = dcgan.Generator(16, 3, 32, 8, n_classes=4), DenoisingConvAutoencoder(), UNetGenerator(16, base=8)
    samples = gan.generate(G, torch.randn(7, 16), torch.arange(7) % 4, batch_size=3)
    fed, out = autoencoder.reconstruct(dn, torch.rand(5, 1, 28, 28), batch_size=2)
    pairs = TensorDataset(torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16))
    xs, ys, outs = pix2pix.translate_pairs(U, pairs, batch_size=2)
    assert samples.shape == (7, 3, 32, 32) and out.shape == fed.shape == (5, 1, 28, 28)
    assert outs.shape == (3, 3, 16, 16)
    assert on_cpu(samples, fed, out, xs, ys, outs)


def test_vae_scoring_returns_cpu_tensors(fake_cuda):
    with fake_cuda:
        endo, conv = EndoVAE(8, image_size=32), ConvVAE(channels=3, image_size=32, latent_dim=8, width=8)
    images = torch.rand(5, 3, 32, 32)
    levels = anomaly.encoder_statistics(endo, images, batch_size=2)
    out = anomaly.run_vae(conv, images, elbo_samples=2, batch_size=2)
    assert [lv.shape[0] for lv in levels] == [5] * len(levels)
    assert out.recon.shape == images.shape and out.mu.shape == (5, 8)
    assert on_cpu(*levels, out.recon, out.mu, out.logvar, out.neg_elbo)


# --- the decisions of the GPU path -------------------------------------------------------------

def test_cuda_loads_batches_in_pinned_worker_processes_and_the_cpu_in_this_one():
    cuda = loader_options(torch.device("cuda"))
    assert cuda["pin_memory"] and cuda["num_workers"] >= 1
    for kind in ("cpu", "mps"):
        assert loader_options(torch.device(kind)) == {"num_workers": 0, "pin_memory": False}


def test_no_workers_where_they_would_be_spawned(monkeypatch):
    """A spawned worker cannot unpickle a transform defined in a notebook: batches stay in this process."""
    spawn = multiprocessing.get_context("spawn")
    monkeypatch.setattr(multiprocessing, "get_context", lambda *a: spawn)
    assert loader_options(torch.device("cuda")) == {"num_workers": 0, "pin_memory": True}


def test_autocast_is_bf16_on_a_cuda_gpu_that_has_it_and_never_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16
    assert autocast_dtype(torch.device("cpu")) is None and autocast_dtype(torch.device("mps")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype(torch.device("cuda")) is None


@pytest.mark.filterwarnings("ignore:.*pin_memory.*")
def test_the_cuda_loader_gives_the_batches_of_the_cpu_path():
    """Workers and pinned memory change where batches are made, never which: same order, same draws."""
    first = TensorDataset(torch.arange(12.0).view(12, 1), torch.arange(12))
    second = TensorDataset(torch.arange(100.0, 105.0).view(5, 1))
    order = torch.randperm(12, generator=torch.Generator().manual_seed(3))

    def batches(device):
        return _batches((first, second), order, 1, 4, torch.Generator().manual_seed(5), torch.device(device))

    on_gpu = batches("cuda")
    assert isinstance(on_gpu, DataLoader) and on_gpu.num_workers >= 1 and on_gpu.pin_memory
    expected, got = list(batches("cpu")), list(on_gpu)
    assert len(got) == len(expected) == 2
    for (a, b), (c, d) in zip(expected, got, strict=True):
        assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) and torch.equal(b[0], d[0])


def test_fit_on_the_cpu_never_autocasts(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("NBH_DEVICE", "cpu")
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def step(batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        loss = model(batch[0]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    fit("no_autocast", step, TensorDataset(torch.randn(8, 2)), batch_size=4, epochs=1,
        state={"model": model, "opt": opt}, config={})
    assert seen == [False, False]
    with autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


def test_vae_loss_terms_stay_float32_under_bf16_autocast():
    """What GPU autocast does to a VAE, shown with the CPU's autocast: the loss terms stay float32."""
    torch.manual_seed(0)
    model = ConvVAE(channels=3, image_size=32, latent_dim=8, width=8)
    x = torch.rand(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = vae.vae_loss(model, x, recon="bce")
        mse = vae.reconstruction_loss(model(x)[0], x, "mse")
    assert {t.dtype for t in (*terms.values(), mse)} == {torch.float32}


# --- what only a real GPU would show, found in the sources -------------------------------------

def python_sources():
    """(name, source) of every nbhelpers module and every notebook code cell."""
    for path in sorted((REPO / "nbhelpers").rglob("*.py")):
        yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        yield path.name, "\n".join(line for cell in code for line in cell.splitlines()
                                   if not line.lstrip().startswith(("%", "!")))


def calls(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            yield node, {k.arg: k.value for k in node.keywords}


def test_every_checkpoint_load_maps_tensors_to_the_cpu_first():
    """A checkpoint written on a GPU must load on a machine without one."""
    loads = [(name, kw) for name, src in python_sources() for node, kw in calls(src)
             if ast.unparse(node.func) == "torch.load"]
    assert loads, "no torch.load found: the scan is looking in the wrong place"
    assert [name for name, kw in loads if "map_location" not in kw] == []


def test_random_draws_with_a_generator_are_made_on_the_generator_device():
    """CUDA refuses a CPU ``torch.Generator`` for a draw on the GPU: draw where the generator is, then move."""
    bad = [f"{name}: {ast.unparse(node)}" for name, src in python_sources() for node, kw in calls(src)
           if "generator" in kw and "device" in kw and "generator" not in ast.unparse(kw["device"])]
    assert bad == []
