"""What every inference helper shares: eval mode that is always undone, and the items to evaluate.

All of them, or under ``NBH_MAX_EVAL_ITEMS`` (a shape check) an evenly spread few. A notebook
that pairs a helper's outputs with labels of its own takes the same items with :func:`evaluated`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from nbhelpers import settings

Indexable = TypeVar("Indexable", bound=Sequence)


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside the block; each module's own mode restored after it.

    Eval mode makes BatchNorm use its running statistics and turns dropout off, so an output does
    not depend on the rest of its batch; restoring the mode (even after an error) means a training
    step that follows never runs in eval mode by accident.
    """
    # Every submodule's own flag: a part kept in eval mode on purpose (a frozen feature
    # extractor) stays so, which one ``train(mode)`` on the whole module would undo.
    modes = [(sub, sub.training) for m in modules for sub in m.modules()]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for sub, mode in modes:
            sub.training = mode


def evaluated(items: Indexable) -> Indexable:
    """The items of a tensor, array or list that the inference helpers run: all, unless capped."""
    return items[settings.current().eval_index(len(items))]


def eval_batches(data: torch.Tensor | Dataset, batch_size: int) -> Iterator[Any]:
    """The :func:`evaluated` items of ``data``, ``batch_size`` at a time: tensor slices, or collated items.

    Items are read in this process: loader workers would not pay for a pass that reads each once.
    """
    if isinstance(data, torch.Tensor):
        yield from evaluated(data).split(batch_size)
        return
    index = evaluated(range(len(data)))
    for i in range(0, len(index), batch_size):
        yield default_collate([data[j] for j in index[i:i + batch_size]])
