"""Run settings: profile, device, seed, data policy and the folders, all read from the environment.

Every notebook, the runner and the tests drive the same code through these variables:

| variable            | values                          | default                                   |
|---------------------|---------------------------------|-------------------------------------------|
| ``NBH_PROFILE``     | ``smoke`` / ``cpu`` / ``full``  | ``full`` on CUDA or MPS, ``cpu`` otherwise |
| ``NBH_DEVICE``      | ``cpu`` / ``cuda`` / ``mps`` …  | the best one available                    |
| ``NBH_SEED``        | an integer                      | ``0``                                     |
| ``NBH_DATA_ROOT``   | a folder                        | ``<repo>/data``                           |
| ``NBH_DATA_POLICY`` | ``auto`` / ``real`` / ``standin`` | ``auto``                                |
| ``NBH_CACHE_DIR``   | a folder for built datasets     | ``<data root>/cache``                     |
| ``NBH_CHECKPOINT_DIR`` | a folder                     | ``<repo>/checkpoints/<profile>``          |
| ``NBH_RESULTS_DIR`` | a folder                        | ``<repo>/results`` (``results/smoke`` for smoke runs) |
| ``NBH_RUNS_DIR``    | TensorBoard logs                | ``<repo>/runs/<profile>``                 |
| ``NBH_PROGRESS``    | ``auto`` / ``text`` / ``off``   | ``auto``: widgets in Jupyter, text elsewhere |
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch

Profile = Literal["smoke", "cpu", "full"]
DataPolicy = Literal["auto", "real", "standin"]
PROFILES: tuple[str, ...] = ("smoke", "cpu", "full")
DATA_POLICIES: tuple[str, ...] = ("auto", "real", "standin")

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable holds a value nbhelpers cannot use."""


@dataclass(frozen=True)
class Settings:
    """The resolved run settings; build one with :func:`current`."""

    profile: str
    device: torch.device
    seed: int
    data_root: Path
    data_policy: str
    cache_dir: Path
    checkpoint_dir: Path
    results_dir: Path
    runs_dir: Path
    progress: str

    def describe(self) -> str:
        """One line naming everything that decides what a run computes."""
        return (
            f"profile={self.profile}  device={self.device}  seed={self.seed}  "
            f"data_policy={self.data_policy}  data_root={self.data_root}"
        )


def best_device() -> torch.device:
    """CUDA if present, then Apple MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise SettingsError(
            f"{name}={value!r} is not one of {', '.join(allowed)}. "
            f"Fix: export {name}={allowed[0]} (or unset it for the default)."
        )
    return value


def current(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``) and fill in the defaults."""
    env = dict(os.environ if env is None else env)
    device = torch.device(env["NBH_DEVICE"]) if env.get("NBH_DEVICE") else best_device()
    default_profile = "cpu" if device.type == "cpu" else "full"
    profile = _choice("NBH_PROFILE", env.get("NBH_PROFILE") or default_profile, PROFILES)
    policy = _choice("NBH_DATA_POLICY", env.get("NBH_DATA_POLICY") or "auto", DATA_POLICIES)
    progress = _choice("NBH_PROGRESS", env.get("NBH_PROGRESS") or "auto", ("auto", "text", "off"))
    try:
        seed = int(env.get("NBH_SEED") or 0)
    except ValueError as err:
        raise SettingsError(f"NBH_SEED={env['NBH_SEED']!r} is not an integer.") from err
    data_root = Path(env.get("NBH_DATA_ROOT") or REPO_ROOT / "data").expanduser()
    # A read-only data root (a shared copy) cannot hold built datasets, so they go to the user cache.
    default_cache = data_root / "cache"
    if data_root.exists() and not os.access(data_root, os.W_OK):
        default_cache = Path.home() / ".cache" / "nbhelpers"
    cache_dir = Path(env.get("NBH_CACHE_DIR") or default_cache).expanduser()
    checkpoint_dir = Path(env.get("NBH_CHECKPOINT_DIR") or REPO_ROOT / "checkpoints" / profile)
    # Smoke runs (CI, quick checks) must never overwrite the committed results of real runs.
    default_results = REPO_ROOT / "results" / ("smoke" if profile == "smoke" else "")
    results_dir = Path(env.get("NBH_RESULTS_DIR") or default_results)
    runs_dir = Path(env.get("NBH_RUNS_DIR") or REPO_ROOT / "runs" / profile)
    return Settings(
        profile=profile,
        device=device,
        seed=seed,
        data_root=data_root,
        data_policy=policy,
        cache_dir=cache_dir,
        checkpoint_dir=checkpoint_dir.expanduser(),
        results_dir=results_dir.expanduser(),
        runs_dir=runs_dir.expanduser(),
        progress=progress,
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick(profiles: dict[str, dict[str, Any]], profile: str | None = None) -> SimpleNamespace:
    """Return the active profile's knobs from a ``{"smoke": {...}, "cpu": {...}, "full": {...}}`` dict.

    Every profile must name the same knobs, so that switching profile never leaves one unset.
    """
    profile = profile or current().profile
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise SettingsError(f"the parameters dict has no entry for profile(s) {missing}.")
    keys = {p: set(v) for p, v in profiles.items()}
    if any(k != keys[profile] for k in keys.values()):
        diff = sorted(set.union(*keys.values()) - set.intersection(*keys.values()))
        raise SettingsError(f"every profile must set the same knobs; these differ: {diff}.")
    return SimpleNamespace(**profiles[profile])


def setup(profiles: dict[str, dict[str, Any]]) -> SimpleNamespace:
    """The first call of every notebook: seed, choose the profile and show what will run.

    Returns the active profile's knobs, plus ``profile``, ``seed`` and ``device``.
    """
    s = current()
    seed_everything(s.seed)
    knobs = pick(profiles, s.profile)
    print(s.describe())
    print("knobs:", ", ".join(f"{k}={v}" for k, v in vars(knobs).items()))
    if s.profile == "smoke":
        print("SMOKE PROFILE: tiny data and a few steps, to prove the cells run. "
              "The numbers below mean nothing.")
    return SimpleNamespace(**vars(knobs), profile=s.profile, seed=s.seed, device=s.device)
