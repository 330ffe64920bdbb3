"""Pretrained backbones built from resolved weights: EfficientNet-Lite0 (timm) and MiniLM (transformers).

`mango.models.weights` finds the files; this module turns them into modules. Both backbones are
frozen by default (`MangoConfig.finetune_pretrained`), kept in eval mode (BatchNorm statistics
and dropout never change), and their weights are fetched rather than stored in checkpoints.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .weights import fingerprint, pretrained, resolve

# EfficientNet-Lite0's token levels: stride -> (how far to run the network, channels). Stride 8 is
# a two-level pyramid: the stride-8 map (blocks[:3], 40 channels) beside the stride-16 map
# (blocks[:5], 112) upsampled to it, so finer tokens keep the deeper level's content.
EFFICIENTNET_LEVELS: dict[int, tuple[str, int]] = {
    8: ("blocks[:3] + up2(blocks[:5])", 40 + 112), 16: ("blocks[:5]", 112), 32: ("conv_head", 1280),
}
EFFICIENTNET_MEAN = (0.5, 0.5, 0.5)  # its ImageNet preprocessing: Normalize([0.5]*3, [0.5]*3)
EFFICIENTNET_STD = (0.5, 0.5, 0.5)
_PARAM_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _timm_efficientnet() -> nn.Module:
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)


def remap_efficientnet_package(state: dict[str, torch.Tensor], target_keys: list[str],
                               target_shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """The pip package's state dict (EfficientNet-PyTorch names: `_conv_stem`, `_blocks.N._bn1`, ...)
    onto timm's `tf_efficientnet_lite0` names. Both list the same tensors in the same order; the
    package adds the ImageNet classifier (`_fc`) at the end, which timm built without. Every pair is
    checked: same kind of tensor (weight, bias, running mean, ...) and same shape."""
    source = [k for k in state if not k.startswith("_fc.")]
    if len(source) != len(target_keys):
        raise ValueError(f"EfficientNet weights have {len(source)} tensors, timm's model {len(target_keys)}")
    out = {}
    for theirs, ours in zip(source, target_keys):
        kind_theirs, kind_ours = theirs.rsplit(".", 1)[-1], ours.rsplit(".", 1)[-1]
        if kind_theirs != kind_ours or kind_ours not in _PARAM_SUFFIXES:
            raise ValueError(f"EfficientNet weights out of order: {theirs} cannot be {ours}")
        if state[theirs].shape != target_shapes[ours]:
            raise ValueError(f"EfficientNet weights: {theirs} {tuple(state[theirs].shape)} does not fit "
                             f"{ours} {tuple(target_shapes[ours])}")
        out[ours] = state[theirs]
    return out


@functools.lru_cache(maxsize=4)
def _read_efficientnet(path: Path) -> dict[str, torch.Tensor]:
    """A weights file in timm's names (Hub safetensors) or the package's (a torch state dict), in
    timm's names. Read once per process: the app and the tests build several models on it."""
    with torch.random.fork_rng(devices=[]):  # cached: must not make the global random stream depend on it
        full = _timm_efficientnet().state_dict()
    keys, shapes = list(full), {k: v.shape for k, v in full.items()}
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:  # weights_only: tensors and containers, never code
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    if set(state) == set(keys):
        return state
    return remap_efficientnet_package(state, keys, shapes)


class EfficientNetBackbone(nn.Module):
    """EfficientNet-Lite0 up to a stride: 8 -> 152 channels (the stride-8 and stride-16 maps, see
    EFFICIENTNET_LEVELS), 16 -> 112, 32 -> 1280 (after its 1x1 head conv)."""

    def __init__(self, stride: int):
        super().__init__()
        if stride not in EFFICIENTNET_LEVELS:
            raise ValueError(f"EfficientNet-Lite0 tokens come at stride {sorted(EFFICIENTNET_LEVELS)}, got {stride}")
        self.stride = stride
        self.channels = EFFICIENTNET_LEVELS[stride][1]
        self.net = _timm_efficientnet()
        if stride < 32:  # the later stages are never run: drop them rather than carry dead weights
            self.net.blocks = self.net.blocks[:5]
            self.net.conv_head = nn.Identity()
            self.net.bn2 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, C, H/stride, W/stride)."""
        net = self.net
        x = net.bn1(net.conv_stem(x))
        if self.stride != 8:
            return net.bn2(net.conv_head(net.blocks(x)))
        fine = net.blocks[:3](x)
        coarse = net.blocks[3:](fine)
        up = nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([fine, up], dim=1)

    def load_pretrained(self, expected_fingerprint: str | None = None) -> tuple[str, str]:
        """Fill the weights from the first source that has them; returns (fingerprint, source)."""
        state, source = resolve(pretrained("efficientnet_lite0"), _read_efficientnet, expected_fingerprint,
                                _efficientnet_fingerprint)
        own = self.net.state_dict()
        missing = set(own) - set(state)
        if missing:
            raise ValueError(f"EfficientNet weights lack {sorted(missing)[:3]}")
        self.net.load_state_dict({k: state[k] for k in own})
        return _efficientnet_fingerprint(state), source


def _efficientnet_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """Fingerprint of a weights dict, remembered per dict object (hashing 3.4M values takes time)."""
    cached = _FINGERPRINTS.get(id(state))
    if cached is None or cached[0] is not state:
        cached = (state, fingerprint(state))
        _FINGERPRINTS[id(state)] = cached
    return cached[1]


_FINGERPRINTS: dict[int, tuple[dict, str]] = {}


class MiniLMBackbone(nn.Module):
    """all-MiniLM-L6-v2's BERT and WordPiece tokenizer; `forward` gives token-level states (B, L, 384)."""

    def __init__(self, expected_fingerprint: str | None = None):
        super().__init__()
        spec = pretrained("minilm_l6")
        (bert_config, state, self.tokenizer, self.weights_fingerprint), self.source = resolve(
            spec, _read_minilm, expected_fingerprint, lambda loaded: loaded[3])
        from transformers import BertModel

        self.bert = BertModel(bert_config, add_pooling_layer=False)
        self.bert.load_state_dict(state)
        self.bert.eval()
        self.width = int(self.bert.config.hidden_size)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids, attention_mask=attention_mask).last_hidden_state


@functools.lru_cache(maxsize=2)
def _read_minilm(folder: Path) -> tuple[Any, dict[str, torch.Tensor], Any, str]:
    """(BERT config, weights, tokenizer, fingerprint) of a model folder, read once per process."""
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # no "unused weights" chatter: the pooler is not used
    hf_logging.disable_progress_bar()
    try:
        with torch.random.fork_rng(devices=[]):  # cached: must not make the global random stream depend on it
            bert = BertModel.from_pretrained(str(folder), add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    state = {k: v.detach().clone() for k, v in bert.state_dict().items()}
    return bert.config, state, tokenizer, fingerprint(state)


__all__ = ["EFFICIENTNET_LEVELS", "EFFICIENTNET_MEAN", "EFFICIENTNET_STD", "EfficientNetBackbone",
           "MiniLMBackbone", "remap_efficientnet_package"]
