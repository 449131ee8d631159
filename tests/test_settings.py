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


def test_accelerator_defaults_to_full_profile():
    assert settings.current({"NBH_DEVICE": "cuda"}).profile == "full"


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


@pytest.mark.parametrize("var,value", [("NBH_PROFILE", "huge"), ("NBH_DATA_POLICY", "maybe"), ("NBH_SEED", "x")])
def test_bad_values_raise_with_the_variable_named(var, value):
    with pytest.raises(settings.SettingsError, match=var):
        settings.current({"NBH_DEVICE": "cpu", var: value})


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
