"""MANGO: multimodal fusion through a normalizing flow of invertible cross-attention layers.

`mango` is the library: the flow (`mango.flow`), the latent model (`mango.models`), data
(`mango.data`) and metrics (`mango.metrics`). It knows nothing of the app or of training scripts.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["MangoConfig", "MangoModel", "__version__"]


def __getattr__(name: str) -> Any:
    """`from mango import MangoModel` works without `import mango` loading torch for those who need
    only a light part (`mango.hub_env`)."""
    if name in ("MangoConfig", "MangoModel"):
        from mango import models

        return getattr(models, name)
    raise AttributeError(f"module 'mango' has no attribute {name!r}")
