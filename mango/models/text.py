"""Text encoders: token-level features projected to D, padded to T, with the pad positions.

SPEC 5's E_m for a text modality, in two backends with one interface:
- `TextEncoder`: open_clip's BPE tokenizer and causal text tower, built at any width/depth and
  trained from scratch by default (CLIP text weights load when asked for and reachable);
- `PretrainedTextEncoder`: all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder and its WordPiece
  tokenizer), frozen by default, weights from `mango.models.weights`.
Token features are padded (or, through the tokenizer's truncation, cut, with a `TextCutWarning`) to T, and the pad
positions are reported, because the flow needs exactly T tokens per modality while plots vary in
length. Both keep one token per word piece, so attention maps stay over words. Like the image
encoders, each is a backbone (`backbone_features`, cacheable when frozen) and a projection.
"""

from __future__ import annotations

import threading
import warnings
from typing import Sequence

import torch
import torch.nn as nn
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import QuickGELU, TextTransformer

from .backbones import MiniLMBackbone
from .errors import CheckpointNotFoundError, HubOfflineError
from .hub import fetch_hub_file

PAD_ID = 0  # open_clip's SimpleTokenizer pads with 0
START, END = "⟨start⟩", "⟨end⟩"


def _pad_to_tokens(features: torch.Tensor, pad: torch.Tensor, tokens: int) -> torch.Tensor:
    """(B, L, D) features with (B, T) pad mask -> (B, T, D), zero rows at pads."""
    if tokens > features.shape[1]:
        features = nn.functional.pad(features, (0, 0, 0, tokens - features.shape[1]))
    return features.masked_fill(pad[..., None], 0.0)


def _pad_mask(ids: torch.Tensor, tokens: int, pad_id: int) -> torch.Tensor:
    pad = torch.ones(ids.shape[0], tokens, dtype=torch.bool, device=ids.device)
    pad[:, : ids.shape[1]] = ids == pad_id
    return pad


def _padded_ids(ids: torch.Tensor, context_length: int, pad_id: int) -> torch.Tensor:
    """(L,) or (B, L) ids with L <= context_length -> (B, context_length) long, right-padded with pad_id."""
    shape = tuple(ids.shape)
    ids = ids.long()
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.shape[1] > context_length:
        raise ValueError(f"token ids must be (B, L) with L <= context_length {context_length}, got {shape}")
    if ids.shape[1] < context_length:
        ids = nn.functional.pad(ids, (0, context_length - ids.shape[1]), value=pad_id)
    return ids


class TextCutWarning(UserWarning):
    """A text had more tokens than the encoder's context, and its end was cut (said once per encoder)."""


class _TokenTextEncoder(nn.Module):
    """What the two backends share: ids right-padded to the context, token states projected to D
    and padded to T, the pad mask. A backend sets `pad_id` and `proj` and gives `tokenize` and
    `backbone_features`."""

    pad_id: int

    def __init__(self, tokens: int, context_length: int) -> None:
        super().__init__()
        if context_length > tokens:
            raise ValueError(f"text context_length {context_length} exceeds T = {tokens}")
        self.tokens = tokens
        self.context_length = context_length
        self._said_cut = False  # whether this encoder has warned of a cut text (`as_ids`)

    @property
    def device(self) -> torch.device:
        return self.proj.weight.device

    def pad_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, context_length) ids -> (B, T) bool, True where the feature row is padding."""
        return _pad_mask(ids, self.tokens, self.pad_id)

    def as_ids(self, text: Sequence[str] | torch.Tensor) -> torch.Tensor:
        """Strings are tokenized; id tensors are checked and right-padded to context_length."""
        if isinstance(text, torch.Tensor):
            ids = _padded_ids(text.to(self.device), self.context_length, self.pad_id)
            vocab = self.embedding.num_embeddings
            if ids.numel() and not (0 <= int(ids.min()) and int(ids.max()) < vocab):
                raise ValueError(f"token ids must be in [0, {vocab}) (this tokenizer's vocabulary), got "
                                 f"{int(ids.min())} to {int(ids.max())}: pass the plot as a string instead")
            return ids
        ids = self.tokenize(text)
        # once per encoder, not at every batch or request (Python's own once-only rule is undone by any
        # change to the warning filters: the app makes one around each upload it opens)
        if self._said_cut:
            return ids
        # only a text that fills the context can have been cut: the others need no second tokenization
        full = [t for t, last in zip(text, ids[:, -1].tolist()) if last != self.pad_id]
        if max((self.token_count(t) for t in full), default=0) > self.context_length:
            self._said_cut = True
            warnings.warn(f"A text longer than this encoder's context of {self.context_length} tokens was cut to its "
                          "first tokens: the rest does not reach the model (`token_count` gives a text's full "
                          "length).", TextCutWarning, stacklevel=3)
        return ids

    def project(self, backbone: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states, ids) -> features (B, T, D) with zero rows at pads, and the (B, T) pad mask."""
        states, ids = backbone
        pad = self.pad_mask(ids)
        return _pad_to_tokens(self.proj(states), pad, self.tokens), pad

    def forward(self, text: Sequence[str] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings or ids -> features (B, T, D) with zero rows at pads, and the (B, T) pad mask."""
        return self.project(self.backbone_features(text))


class TextEncoder(_TokenTextEncoder):
    """open_clip tokenizer + causal text tower -> (B, T, D) token features and a (B, T) pad mask.

    The tower is causal (CLIP's), so a token's feature never depends on the padding after it;
    feature rows at pad positions are set to zero. `embedding` is the token embedding layer,
    the entry point for captum's layer attributions over words.
    """

    frozen_backbone = False  # the tower is trained by the task loss unless finetune_text_encoder is off
    pad_id = PAD_ID

    def __init__(
        self,
        dim: int,
        tokens: int,
        width: int,
        layers: int,
        heads: int,
        context_length: int,
        pretrained: str | None = None,
        quick_gelu: bool = False,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(tokens, context_length)
        self.tokenizer = SimpleTokenizer(context_length=context_length)
        self.tower = TextTransformer(
            context_length=context_length,
            vocab_size=self.tokenizer.vocab_size,
            width=width,
            heads=heads,
            layers=layers,
            output_dim=None,
            output_tokens=True,
            pad_id=PAD_ID,
            act_layer=QuickGELU if quick_gelu else nn.GELU,
        )
        self.proj = nn.Linear(width, dim)
        if pretrained is not None and load_pretrained:
            load_clip_text_weights(self.tower, pretrained, quick_gelu)

    @property
    def embedding(self) -> nn.Embedding:
        return self.tower.token_embedding

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """list of strings -> (B, context_length) int64 ids (start, BPE tokens, end, pads)."""
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of strings, got a single str")
        return self.tokenizer(list(texts)).to(self.device)

    def special_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, True at start, end and pad tokens: positions that carry no word."""
        tok = self.tokenizer
        return (ids == PAD_ID) | (ids == tok.sot_token_id) | (ids == tok.eot_token_id)

    def word_pieces(self, ids: torch.Tensor) -> list[str]:
        """Readable pieces of one (L,) id row, from the start token to the end token inclusive."""
        tok = self.tokenizer
        row = ids.tolist()
        end = row.index(tok.eot_token_id) if tok.eot_token_id in row else len(row) - 1
        names = {tok.sot_token_id: START, tok.eot_token_id: END}
        return [names.get(i) or tok.decode([i]).strip() for i in row[: end + 1]]

    def token_count(self, text: str) -> int:
        """How many tokens the whole text takes, start and end included (before truncation)."""
        return len(self.tokenizer.encode(text)) + 2

    def backbone_features(self, text: Sequence[str] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings or ids -> (the tower's token states (B, context_length, width), the ids)."""
        ids = self.as_ids(text)
        _, token_features = self.tower(ids)
        return token_features, ids


# A fast tokenizer sets its truncation and padding on its one Rust object before each call, and
# every MiniLM encoder of a process shares one tokenizer (read once): concurrent calls with other
# settings (the app tokenizes for a view while counting a plot's words) would mix them up.
_HF_TOKENIZER_LOCK = threading.Lock()


class PretrainedTextEncoder(_TokenTextEncoder):
    """all-MiniLM-L6-v2 token states (B, L, 384) -> linear projection to D, padded to T.

    The BERT is bidirectional: each token's state reads the whole plot (pads are masked out).
    Frozen and in eval mode (no dropout) unless `finetune`; the projection is trained by the task
    loss. `embedding` is BERT's word-embedding layer, the entry point for captum over words.
    """

    weights_name = "minilm_l6"

    def __init__(self, dim: int, tokens: int, context_length: int, finetune: bool = False,
                 expected_fingerprint: str | None = None) -> None:
        super().__init__(tokens, context_length)
        self.backbone = MiniLMBackbone(expected_fingerprint)
        self.tokenizer = self.backbone.tokenizer
        self.weights_fingerprint = self.backbone.weights_fingerprint
        self.weights_source = self.backbone.source
        self.frozen_backbone = not finetune
        if self.frozen_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.proj = nn.Linear(self.backbone.width, dim)

    def train(self, mode: bool = True) -> "PretrainedTextEncoder":
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()
        return self

    @property
    def embedding(self) -> nn.Embedding:
        return self.backbone.bert.embeddings.word_embeddings

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """list of strings -> (B, context_length) int64 ids ([CLS], word pieces, [SEP], pads)."""
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of strings, got a single str")
        with _HF_TOKENIZER_LOCK:
            encoded = self.tokenizer(list(texts), padding="max_length", truncation=True,
                                     max_length=self.context_length, return_tensors="pt")
        return encoded["input_ids"].to(self.device)

    def special_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, True at [CLS], [SEP] and pad tokens: positions that carry no word."""
        tok = self.tokenizer
        return (ids == tok.pad_token_id) | (ids == tok.cls_token_id) | (ids == tok.sep_token_id)

    def word_pieces(self, ids: torch.Tensor) -> list[str]:
        """Readable pieces of one (L,) id row, from [CLS] to [SEP] inclusive ("##" marks a word's continuation)."""
        tok = self.tokenizer
        row = ids.tolist()
        end = row.index(tok.sep_token_id) if tok.sep_token_id in row else len(row) - 1
        names = {tok.cls_token_id: START, tok.sep_token_id: END}
        return [names.get(i) or tok.convert_ids_to_tokens(i) for i in row[: end + 1]]

    def token_count(self, text: str) -> int:
        """How many tokens the whole text takes, [CLS] and [SEP] included (before truncation)."""
        with _HF_TOKENIZER_LOCK:
            return len(self.tokenizer(text, truncation=False)["input_ids"])

    def backbone_features(self, text: Sequence[str] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings or ids -> (BERT token states (B, context_length, 384), the ids)."""
        ids = self.as_ids(text)
        # frozen: no parameter gradient, but an attribution may still differentiate through it
        # (captum overrides the word embeddings with values that require grad)
        return self.backbone(ids, (ids != self.pad_id).long()), ids


def load_clip_text_weights(tower: TextTransformer, name: str, quick_gelu: bool) -> None:
    """Copy CLIP's text weights ("model:tag", e.g. "ViT-B-32:openai") into `tower`.

    Only Hub-hosted open_clip weights are read, through the offline-first fetch in hub.py, and
    only from safetensors or a weights-only torch load.
    """
    from open_clip.pretrained import get_pretrained_cfg

    model_name, _, tag = name.partition(":")
    cfg = get_pretrained_cfg(model_name, tag) if tag else {}
    if not cfg or not cfg.get("hf_hub"):
        raise ValueError(f"text_pretrained {name!r}: no Hub-hosted open_clip weights of that model:tag")
    if bool(cfg.get("quick_gelu", False)) != quick_gelu:
        raise ValueError(
            f"text_pretrained {name!r} was trained with quick_gelu={bool(cfg.get('quick_gelu'))}; "
            f"set text_quick_gelu={bool(cfg.get('quick_gelu'))}"
        )
    repo = cfg["hf_hub"].strip("/")
    try:
        path = fetch_hub_file(repo, "open_clip_model.safetensors", what="CLIP text weights")
        from safetensors.torch import load_file

        state = load_file(str(path))
    except (CheckpointNotFoundError, HubOfflineError):  # try the pickle-free torch file next
        path = fetch_hub_file(repo, "open_clip_pytorch_model.bin", what="CLIP text weights")
        state = torch.load(path, map_location="cpu", weights_only=True)
    prefixes = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.")
    text_state = {}
    for key, value in state.items():
        key = key[len("text.") :] if key.startswith("text.") else key
        if key.startswith(prefixes):
            text_state[key] = value
    own = tower.state_dict()
    wrong = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in text_state.items() if k in own and v.shape != own[k].shape}
    if wrong or not text_state:
        raise ValueError(
            f"text_pretrained {name!r} does not fit text_width/text_layers/text_heads/"
            f"text_context_length: (checkpoint, model) shapes {dict(list(wrong.items())[:3])}"
        )
    missing, _ = tower.load_state_dict(text_state, strict=False)
    missing = [k for k in missing if k != "attn_mask"]
    if missing:
        raise ValueError(f"text_pretrained {name!r} lacks {missing[:5]} (deeper tower than the weights?)")
