"""Run settings: profile, device, seed, data policy and the folders, all read from the environment.

Every notebook, the runner and the tests drive the same code through these variables:

| variable            | values                          | default                                   |
|---------------------|---------------------------------|-------------------------------------------|
| ``NBH_PROFILE``     | ``smoke`` / ``cpu`` / ``full``  | ``full`` on CUDA or MPS, ``cpu`` otherwise |
| ``NBH_DEVICE``      | ``cpu`` / ``cuda[:n]`` / ``mps`` (present here) | the best one available    |
| ``NBH_SEED``        | an integer                      | ``0``                                     |
| ``NBH_DATA_ROOT``   | a folder                        | ``<repo>/data``                           |
| ``NBH_DATA_POLICY`` | ``auto`` / ``real`` / ``standin`` | ``auto``                                |
| ``NBH_CACHE_DIR``   | a folder for built datasets     | ``<data root>/cache``                     |
| ``NBH_CHECKPOINT_DIR`` | a folder                     | ``<repo>/checkpoints/<profile>``          |
| ``NBH_RESULTS_DIR`` | a folder                        | ``<repo>/results`` (``results/smoke`` for smoke runs) |
| ``NBH_RUNS_DIR``    | TensorBoard logs                | ``<repo>/runs/<profile>``                 |
| ``NBH_PROGRESS``    | ``auto`` / ``text`` / ``off``   | ``auto``: widgets in Jupyter, text elsewhere |
| ``NBH_MAX_STEPS``   | a positive integer              | unset: every ``fit`` trains its full budget |
| ``NBH_MAX_EVAL_ITEMS`` | a positive integer           | unset: evaluations see all of their data  |

The last two exist for checks, not lessons: with them every ``fit`` stops after that many steps
and every evaluation helper (``predict``, ``generate``, ``run_vae``, ...) runs that many items,
evenly spread over its data, so a profile's shapes can be executed end to end in minutes; the
numbers mean nothing.
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
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")
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
    max_steps: int | None
    max_eval_items: int | None

    def eval_index(self, n: int) -> slice:
        """Which of ``n`` items an evaluation helper runs: all, or under ``NBH_MAX_EVAL_ITEMS`` at most
        that many, evenly spread, so that a set sorted by class still shows every class."""
        if self.max_eval_items is None or n <= self.max_eval_items:
            return slice(None)
        return slice(0, n, -(-n // self.max_eval_items))

    def describe(self) -> str:
        """One line naming everything that decides what a run computes."""
        # Committed outputs show this line: a data root outside the repository is named by the
        # variable that chose it, not by this machine's path.
        root = _relative(self.data_root, REPO_ROOT) or "$NBH_DATA_ROOT"
        return (
            f"profile={self.profile}  device={self.device}  seed={self.seed}  "
            f"data_policy={self.data_policy}  data_root={root}"
        )


def _available(kind: str) -> bool:
    """Whether torch can run on a ``kind`` device on this machine."""
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def best_device() -> torch.device:
    """CUDA if present, then Apple MPS, else the CPU."""
    return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if _available(kind)))


def _device(value: str) -> torch.device:
    """The device ``NBH_DEVICE`` names, refused now unless torch can use it on this machine.

    Refusing here, in ``setup``, beats a notebook failing much later at its first ``.to(device)``.
    """
    fix = "Fix: unset NBH_DEVICE to use the best device here, or export NBH_DEVICE=cpu."
    try:
        device = torch.device(value.strip().lower())
    except RuntimeError:  # torch's own message lists two dozen backends that nbhelpers never uses
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise SettingsError(f"NBH_DEVICE={value!r} is not one of cpu, cuda, cuda:<index>, mps. {fix}")
    if not _available(device.type):
        raise SettingsError(
            f"NBH_DEVICE={value!r}, but torch {torch.__version__} finds no {device.type} device on this "
            f"machine (no such GPU or driver, or a torch build without it). {fix}"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingsError(
            f"NBH_DEVICE={value!r}, but this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"numbered from 0. {fix}"
        )
    return device


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise SettingsError(
            f"{name}={value!r} is not one of {', '.join(allowed)}. "
            f"Fix: export {name}={allowed[0]} (or unset it for the default)."
        )
    return value


def _cap(env: dict[str, str], name: str) -> int | None:
    """A positive integer from ``env[name]``, or None when it is unset or empty."""
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name}={value!r} is not a positive integer. "
                            f"Fix: export {name}=2 (any whole number from 1), or unset it for no cap.")
    return int(value)


def current(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``) and fill in the defaults."""
    env = dict(os.environ if env is None else env)
    device = _device(env["NBH_DEVICE"]) if env.get("NBH_DEVICE") else best_device()
    default_profile = "cpu" if device.type == "cpu" else "full"
    profile = _choice("NBH_PROFILE", env.get("NBH_PROFILE") or default_profile, PROFILES)
    policy = _choice("NBH_DATA_POLICY", env.get("NBH_DATA_POLICY") or "auto", DATA_POLICIES)
    progress = _choice("NBH_PROGRESS", env.get("NBH_PROGRESS") or "auto", ("auto", "text", "off"))
    try:
        seed = int(env.get("NBH_SEED") or 0)
    except ValueError as err:
        raise SettingsError(
            f"NBH_SEED={env['NBH_SEED']!r} is not an integer. "
            "Fix: export NBH_SEED=0 (any whole number; or unset it for the default 0)."
        ) from err
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
        max_steps=_cap(env, "NBH_MAX_STEPS"),
        max_eval_items=_cap(env, "NBH_MAX_EVAL_ITEMS"),
    )


def _relative(path: Path, base: Path) -> str | None:
    """``path`` below ``base`` as a POSIX path ("." for ``base`` itself), or None when it lies elsewhere."""
    try:
        return Path(path).expanduser().resolve().relative_to(base.expanduser().resolve()).as_posix()
    except ValueError:
        return None


def display_path(path: str | Path, data_root: str | Path | None = None) -> str:
    """``path`` as outputs, messages and results records show it: without this machine's folders.

    Committed notebooks and results must not carry the paths of the machine that ran them. Below
    the cache folder or the data root (``data_root``, default the settings') a path reads
    ``<cache dir>/...`` or ``<data root>/...``; inside the repository it is relative to it
    (``checkpoints/cpu/...``); below a checkpoint, results or runs folder set elsewhere,
    ``<checkpoint dir>/...`` and so on; below the home folder, ``~/...``. Anything else, which
    only an explicit argument can point to, is shown as given.
    """
    s = current()
    bases = [
        (s.cache_dir, "<cache dir>"),  # first: the default cache lies inside the data root
        (Path(data_root) if data_root is not None else s.data_root, "<data root>"),
        (REPO_ROOT, ""),
        (s.checkpoint_dir, "<checkpoint dir>"),
        (s.results_dir, "<results dir>"),
        (s.runs_dir, "<runs dir>"),
        (Path.home(), "~"),
    ]
    for base, label in bases:
        rel = _relative(Path(path), base)
        if rel is not None:
            return rel if not label else label if rel == "." else f"{label}/{rel}"
    return str(path)


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


_TRACKED: set[str] = set()  # the knob names of the latest setup()
_READ: dict[str, Any] = {}  # those the notebook has read since, with their values: fit fingerprints them


class Knobs(SimpleNamespace):
    """What :func:`setup` returns: the profile's knobs, plus ``profile``, ``seed`` and ``device``.

    It notes each profile knob the notebook reads, so that ``fit`` can tie a checkpoint to the
    knobs read before training without every notebook listing them again. ``profile`` and
    ``seed`` go into that fingerprint anyway; ``device`` stays out (a checkpoint moves between
    devices).
    """

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in _TRACKED:
            _READ[name] = value
        return value


def knobs_read() -> dict[str, Any]:
    """The profile knobs read so far from the latest :func:`setup`'s result (none before a setup)."""
    return dict(_READ)


def setup(profiles: dict[str, dict[str, Any]]) -> Knobs:
    """The first call of every notebook: seed, choose the profile and show what will run.

    Returns the active profile's knobs, plus ``profile``, ``seed`` and ``device``, as :class:`Knobs`.
    """
    s = current()
    seed_everything(s.seed)
    knobs = pick(profiles, s.profile)
    _TRACKED.clear()
    _TRACKED.update(vars(knobs))
    _READ.clear()
    print(s.describe())
    print("knobs:", ", ".join(f"{k}={v}" for k, v in vars(knobs).items()))
    if s.profile == "smoke":
        print("SMOKE PROFILE: tiny data and a few steps, to prove the cells run. "
              "The numbers below mean nothing.")
    if s.max_steps is not None or s.max_eval_items is not None:
        print(f"CAPPED RUN: every training stops after {s.max_steps or 'all its'} steps and every "
              f"evaluation runs {s.max_eval_items or 'all its'} items (NBH_MAX_STEPS, "
              "NBH_MAX_EVAL_ITEMS), to prove the shapes run. The numbers below mean nothing.")
    return Knobs(**vars(knobs), profile=s.profile, seed=s.seed, device=s.device)
