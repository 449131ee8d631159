"""Dataset loaders: real files in their official layouts, downloads, and announced offline stand-ins.

One module per dataset family, each with one public loader::

    from nbhelpers.data.mnist import mnist, fashion_mnist
    from nbhelpers.data.mnistm import mnist_m
    from nbhelpers.data.cifar import cifar10
    from nbhelpers.data.blood import blood_mnist
    from nbhelpers.data.ecg import ecg5000
    from nbhelpers.data.kvasir import kvasir
    from nbhelpers.data.facades import facades

Importing this package registers every family, so ``status()`` lists all the datasets.
"""

from nbhelpers.data import blood, cifar, ecg, facades, kvasir, mnist, mnistm  # noqa: F401 (registers)
from nbhelpers.data.core import REGISTRY, DataError, DataSource, TensorImageDataset, status

__all__ = ["REGISTRY", "DataError", "DataSource", "TensorImageDataset", "status"]
