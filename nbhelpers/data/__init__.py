"""Dataset loaders: real files in their official layouts, downloads, and announced offline stand-ins.

Importing this package registers every dataset, so ``status()`` lists them all.
"""

from nbhelpers.data.core import REGISTRY, DataError, DataSource, TensorImageDataset, status

__all__ = ["REGISTRY", "DataError", "DataSource", "TensorImageDataset", "status"]
