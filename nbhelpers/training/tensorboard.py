"""TensorBoard logging that survives a resume of ``fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from nbhelpers import settings


def default_log_dir(name: str) -> Path:
    """``<runs_dir>/<name>``: one TensorBoard run per model, profiles kept apart."""
    return settings.current().runs_dir / name


class TensorBoardLog:
    """Per-step scalars to TensorBoard, kept consistent when ``fit`` resumes an interrupted run.

    Put it in ``fit``'s ``state``: its step counter is checkpointed with the models. The writer
    opens lazily at the first ``log`` call with ``purge_step`` set to that step, so TensorBoard
    discards whatever an interrupted run wrote after its last checkpoint instead of drawing those
    steps twice; a fresh run (step 1) starts the curves afresh.
    """

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self.step = 0
        self._writer: SummaryWriter | None = None

    def log(self, scalars: dict[str, float]) -> dict[str, float]:
        """Write ``scalars`` at the next step and hand them back (so a step can be wrapped)."""
        self.step += 1
        if self._writer is None:
            self._writer = SummaryWriter(str(self.log_dir), purge_step=self.step)
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, self.step)
        return scalars

    def close(self) -> None:
        """Flush the event file to disk and close it (logging again reopens it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
