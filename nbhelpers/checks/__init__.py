"""The exercises' checks, one module per notebook, one function per exercise (see ``exercises``).

``from nbhelpers import checks; checks.mnist_gan_vae.gan_step(gan_step)`` imports the module on
first use, so a check cell needs only this package.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "pixelda": "01",
    "endovae": "02",
    "blood_gans": "03",
    "autoencoders": "04",
    "mnist_gan_vae": "05",
}


def __getattr__(name: str) -> ModuleType:
    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
