import pytest
import torch

from nbhelpers import settings

PROFILES = {"smoke": {"epochs": 1, "n": 10}, "cpu": {"epochs": 5, "n": 1000}, "full": {"epochs": 50, "n": None}}


def test_defaults_on_cpu_pick_cpu_profile_and_auto_policy():
    s = settings.current({"NBH_DEVICE": "cpu"})
    assert s.profile == "cpu"
    assert s.data_policy == "auto"
    assert s.seed == 0
    assert s.device == torch.device("cpu")
    assert s.data_root == settings.REPO_ROOT / "data"


@pytest.fixture
def cuda(monkeypatch):
    """A machine that reports one CUDA device (whatever this one has)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_accelerator_defaults_to_full_profile(cuda):
    assert settings.current({"NBH_DEVICE": "cuda"}).profile == "full"


def test_cuda_without_cuda_is_refused_at_setup_with_the_fix(no_cuda, monkeypatch):
    monkeypatch.setenv("NBH_DEVICE", "cuda")
    with pytest.raises(settings.SettingsError, match="finds no cuda device") as err:
        settings.setup(PROFILES)
    assert "Fix: unset NBH_DEVICE" in str(err.value)


def test_a_cuda_index_past_the_last_device_is_refused(cuda):
    with pytest.raises(settings.SettingsError, match="has 1 CUDA device"):
        settings.current({"NBH_DEVICE": "cuda:1"})
    assert settings.current({"NBH_DEVICE": "CUDA:0"}).device == torch.device("cuda", 0)


@pytest.mark.parametrize("value", ["gpu", "meta", "cuda:x"])
def test_unknown_device_names_the_accepted_values(value):
    with pytest.raises(settings.SettingsError) as err:
        settings.current({"NBH_DEVICE": value})
    message = str(err.value)
    assert "not one of cpu, cuda, cuda:<index>, mps" in message and "Fix:" in message
    assert "ipu" not in message  # not torch's list of every backend it was built to know


def test_environment_overrides():
    s = settings.current({"NBH_DEVICE": "cpu", "NBH_PROFILE": "Smoke", "NBH_DATA_POLICY": "standin",
                          "NBH_SEED": "7", "NBH_DATA_ROOT": "/tmp/somewhere"})
    assert (s.profile, s.data_policy, s.seed) == ("smoke", "standin", 7)
    assert str(s.data_root) == "/tmp/somewhere"


def test_smoke_results_never_land_beside_real_results():
    smoke = settings.current({"NBH_DEVICE": "cpu", "NBH_PROFILE": "smoke"})
    cpu = settings.current({"NBH_DEVICE": "cpu", "NBH_PROFILE": "cpu"})
    assert smoke.results_dir == cpu.results_dir / "smoke"
    assert smoke.checkpoint_dir != cpu.checkpoint_dir


@pytest.mark.parametrize("var,value", [("NBH_PROFILE", "huge"), ("NBH_DATA_POLICY", "maybe"), ("NBH_SEED", "abc")])
def test_bad_values_raise_with_the_variable_named_and_the_fix(var, value):
    with pytest.raises(settings.SettingsError, match=var) as err:
        settings.current({"NBH_DEVICE": "cpu", var: value})
    assert f"Fix: export {var}=" in str(err.value)


def test_pick_returns_the_active_profile():
    assert settings.pick(PROFILES, "cpu").epochs == 5
    assert settings.pick(PROFILES, "smoke").n == 10


def test_pick_refuses_profiles_with_different_knobs():
    bad = {**PROFILES, "full": {"epochs": 50}}
    with pytest.raises(settings.SettingsError, match="n"):
        settings.pick(bad, "cpu")
    with pytest.raises(settings.SettingsError, match="full"):
        settings.pick({"smoke": {}, "cpu": {}}, "cpu")


def test_setup_seeds_everything(monkeypatch, capsys):
    monkeypatch.setenv("NBH_SEED", "3")
    p = settings.setup(PROFILES)
    a = torch.rand(3)
    settings.setup(PROFILES)
    assert torch.equal(a, torch.rand(3))
    assert p.seed == 3 and p.profile == "smoke"
    assert "profile=smoke" in capsys.readouterr().out


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A data root, a cache and a checkpoint folder outside the repository, and a home folder."""
    for var, name in [("NBH_DATA_ROOT", "shared/data"), ("NBH_CACHE_DIR", "nbh_cache"),
                      ("NBH_CHECKPOINT_DIR", "ckpt"), ("HOME", "home")]:
        monkeypatch.setenv(var, str(tmp_path / name))
    return tmp_path


def test_display_path_hides_the_machines_folders(folders):
    shown = settings.display_path
    assert shown(folders / "shared/data/HyperKvasir") == "<data root>/HyperKvasir"
    assert shown(folders / "shared/data") == "<data root>"
    assert shown(folders / "nbh_cache/mnist_m/train-1.npz") == "<cache dir>/mnist_m/train-1.npz"
    assert shown(folders / "ckpt/dcgan.pt") == "<checkpoint dir>/dcgan.pt"
    assert shown(settings.REPO_ROOT / "results" / "01_x.json") == "results/01_x.json"
    assert shown(folders / "home/runs/a") == "~/runs/a"
    assert shown(folders / "other/MNIST/raw", data_root=folders / "other") == "<data root>/MNIST/raw"


def test_display_path_is_relative_to_the_repository_for_default_folders(monkeypatch):
    monkeypatch.delenv("NBH_CHECKPOINT_DIR")
    monkeypatch.setenv("NBH_PROFILE", "cpu")
    path = settings.current().checkpoint_dir / "vae.pt"
    assert settings.display_path(path) == "checkpoints/cpu/vae.pt"


def test_describe_names_no_machine_path(folders):
    outside = settings.current({"NBH_DEVICE": "cpu", "NBH_DATA_ROOT": str(folders / "shared/data")})
    assert outside.describe().endswith("data_root=$NBH_DATA_ROOT")
    assert settings.current({"NBH_DEVICE": "cpu"}).describe().endswith("data_root=data")


def test_the_command_line_prints_a_bad_setting_without_a_traceback(monkeypatch, capsys):
    from nbhelpers.__main__ import main

    monkeypatch.setenv("NBH_DEVICE", "gpu")
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m nbhelpers: NBH_DEVICE='gpu' is not one of") and "Traceback" not in err
