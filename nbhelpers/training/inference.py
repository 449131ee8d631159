"""What every inference helper walks through: the items to evaluate, in order, in batches.

All of them, or under ``NBH_MAX_EVAL_ITEMS`` (a shape check) an evenly spread few. A notebook
that pairs a helper's outputs with labels of its own takes the same items with :func:`evaluated`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset, default_collate

from nbhelpers import settings

Indexable = TypeVar("Indexable", bound=Sequence)


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
