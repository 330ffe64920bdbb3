"""MANGO: multimodal fusion through a normalizing flow of invertible cross-attention layers.

`mango` is the library: the flow (`mango.flow`), the latent model (`mango.models`), data
(`mango.data`) and metrics (`mango.metrics`). It knows nothing of the app or of training scripts.
"""

__version__ = "0.1.0"
