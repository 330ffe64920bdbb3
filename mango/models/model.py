"""MangoModel: per-modality encoders -> flow G (or a baseline fusion) -> task head, one class.

Direction and shapes, stated once: features F = [A tokens; B tokens] of shape (B, N = 2T, D),
modality A first; Z = G(F) has the same shape and token positions; the head reads Z (SPEC 6).
`log_prob` is log p(F) in nats = log N(Z; 0, I) + log|det dG/dF|; `bits_per_dim` is
-log_prob / (N D ln 2).

The NLL gradient never reaches an encoder (SPEC 5): when F carries a gradient, the likelihood is
computed by a second flow pass on F.detach(), so the task loss can still fine-tune an encoder and
attributions can still flow back to the input pixels or word embeddings, but the density cannot
be raised by shrinking F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import AsymmetricLossMultiLabel

from mango.data.constants import TASKONOMY_DOMAINS
from mango.flow.base import evaluating

from .checkpoint import CheckpointMixin
from .config import MangoConfig
from .fusion import FusionPlan, combine_outputs, fusion_plan, split_tokens
from .heads import build_head
from .image import ImageEncoder, PretrainedImageEncoder, build_image_decoder
from .text import PretrainedTextEncoder, TextEncoder

TextInput = Union[Sequence[str], torch.Tensor]
ModalityInput = Union[torch.Tensor, Sequence[str], None]


@dataclass
class MangoOutput:
    """What a forward pass gives.

    output: segmentation logits (B, C, H, W) / translated image (B, C, H, W) / genre logits (B, K).
    z: the flow output (B, N, D) (for baselines without a flow: the features themselves).
    log_prob, bits_per_dim: (B,) exact log-likelihood of the features; None without a flow.
    features: encoder features F (B, N, D), modality A's tokens first.
    pad_mask: (B, T) True at the text modality's pad positions; None without text.
    """

    output: torch.Tensor
    z: torch.Tensor
    log_prob: torch.Tensor | None
    bits_per_dim: torch.Tensor | None
    features: torch.Tensor
    pad_mask: torch.Tensor | None = None


def build_flow(config: MangoConfig) -> nn.Module:
    """The configured flow from mango.flow (ICA: MangoFlow, or the coupling-only CouplingFlow)."""
    from mango.flow import CouplingFlow, MangoFlow

    common: dict[str, Any] = dict(
        dim=config.dim, tokens_per_modality=config.tokens_per_modality, num_blocks=config.num_blocks,
        partitions=tuple(config.partitions), actnorm=config.actnorm, coupling_hidden=config.coupling_hidden,
        whitening=config.whitening, whitening_scale=config.whitening_scale,
        whitening_channels=config.whitening_channels,
    )
    if config.flow == "coupling":  # the coupling baseline keeps the partitions, with token couplings on them
        return CouplingFlow(**common)
    return MangoFlow(**common, heads=config.heads, key_dim=config.key_dim, ica_form=config.ica_form,
                     gate_init=config.gate_init, gate_range=tuple(config.gate_range),
                     value_affine=config.value_affine, exclude_self=config.ica_exclude_self,
                     unit_diagonal=config.ica_unit_diagonal, diag_bias_init=config.diag_bias_init)


def build_encoder(config: MangoConfig, key: str, load_pretrained: bool = True) -> nn.Module:
    """Modality `key`'s encoder, by its `encoder` field (see ModalityConfig)."""
    modality = config.modality(key)
    expected = config.pretrained_fingerprints.get(modality.encoder)
    if modality.encoder == "minilm_l6":
        return PretrainedTextEncoder(config.dim, config.tokens_per_modality, config.text_context_length,
                                     finetune=config.finetune_pretrained, expected_fingerprint=expected)
    if modality.encoder == "clip":
        return TextEncoder(
            config.dim, config.tokens_per_modality, config.text_width, config.text_layers,
            config.text_heads, config.text_context_length, config.text_pretrained,
            config.text_quick_gelu, load_pretrained,
        )
    if modality.encoder == "efficientnet_lite0":
        return PretrainedImageEncoder(modality, config.image_size, config.patch_size, config.dim,
                                      finetune=config.finetune_pretrained, load_pretrained=load_pretrained,
                                      expected_fingerprint=expected)
    return ImageEncoder(
        modality, config.image_size, config.patch_size, config.dim, config.encoder_width,
        config.encoder_depth, config.encoder_heads, config.encoder_pretrained, load_pretrained,
    )


def gaussian_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Standard-normal log-density summed over all but the batch axis, (B,), float32."""
    z = z.float()
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(dim=1)


class MangoModel(CheckpointMixin, nn.Module):
    """MANGO and its baselines for segmentation, translation and genre classification.

    `a`, `b` are image tensors (B, C, H, W) in [0, 1], or for a text modality a list of strings
    or (B, L) int64 token ids. Sampling, resampling and interpolation run without gradients;
    call `.eval()` first for deterministic heads (dropout).
    """

    def __init__(self, config: MangoConfig, load_pretrained: bool = True) -> None:
        """`load_pretrained=False` builds the architecture without fetching pretrained weights that
        a checkpoint stores (from_pretrained uses it); frozen pretrained backbones, which
        checkpoints leave out, are always fetched, and must match the fingerprints the config
        recorded. A new model records the fingerprints of what it fetched."""
        super().__init__()
        self.config = config
        self.plan: FusionPlan = fusion_plan(config)
        self.encoders = nn.ModuleDict()
        self.decoders = nn.ModuleDict()
        for key in self.plan.modalities:
            modality = config.modality(key)
            encoder = build_encoder(config, key, load_pretrained)
            self.encoders[key] = encoder
            fingerprint = getattr(encoder, "weights_fingerprint", None)
            if fingerprint is not None:
                config.pretrained_fingerprints.setdefault(modality.encoder, fingerprint)
            if not modality.is_text:
                self.decoders[key] = build_image_decoder(
                    config.decoder, modality, config.image_size, config.patch_size, config.dim,
                    config.decoder_width, config.decoder_depth, config.decoder_heads,
                )
        self.flow: nn.Module | None = build_flow(config) if self.plan.uses_flow else None
        self.heads = nn.ModuleList(build_head(config, len(keys)) for keys in self.plan.head_inputs)

    def external_state_prefixes(self) -> tuple[str, ...]:
        """Frozen pretrained backbones: fetched at load time (and checked), not stored in checkpoints."""
        return tuple(f"encoders.{key}.backbone." for key, encoder in self.encoders.items()
                     if getattr(encoder, "weights_name", None) and encoder.frozen_backbone)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def has_flow(self) -> bool:
        return self.flow is not None

    @property
    def tokens_per_modality(self) -> int:
        return self.config.tokens_per_modality

    @property
    def tokens_grid(self) -> tuple[int, int]:
        """(rows, cols) of an image modality's patch grid; token t sits at (t // cols, t % cols)."""
        return self.config.grid

    @property
    def text_encoder(self) -> TextEncoder | PretrainedTextEncoder | None:
        for key, encoder in self.encoders.items():
            if self.config.modality(key).is_text:
                return encoder
        return None

    @property
    def tokenizer(self) -> Any:
        """The text encoder's tokenizer (open_clip's SimpleTokenizer or a Hugging Face one); None
        without text. Prefer the encoder's tokenizer-agnostic `word_pieces`/`special_mask`."""
        encoder = self.text_encoder
        return None if encoder is None else encoder.tokenizer

    @property
    def text_embedding(self) -> nn.Embedding | None:
        """The word embedding layer, for captum's LayerIntegratedGradients over text."""
        encoder = self.text_encoder
        return None if encoder is None else encoder.embedding

    def text_tokens(self, texts: Sequence[str] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, text_context_length) and the (B, T) pad mask of the features they give,
        from strings or from ids (checked and padded, as the model reads them)."""
        encoder = self.text_encoder
        if encoder is None:
            raise ValueError("this model has no text modality")
        ids = encoder.as_ids(texts)
        return ids, encoder.pad_mask(ids)

    # ------------------------------------------------------------------ encoding
    def trained_in_stage2(self, key: str) -> bool:
        """Does stage 2 (the task loss) update modality `key`'s encoder?"""
        modality = self.config.modality(key)
        return self.config.finetune_text_encoder if modality.is_text else self.config.finetune_image_encoders

    @property
    def cacheable_backbones(self) -> bool:
        """Stage 2 never updates any backbone, so a run can compute `backbone_outputs` once."""
        return all(encoder.frozen_backbone or not self.trained_in_stage2(key) for key, encoder in self.encoders.items())

    def backbone_outputs(self, a: ModalityInput, b: ModalityInput = None, detach_frozen: bool = False) -> dict[str, Any]:
        """Each encoded modality's backbone output, before its projection to D (see `project`)."""
        inputs = {"a": a, "b": b}
        outputs: dict[str, Any] = {}
        for key in self.plan.modalities:
            value = inputs[key]
            modality = self.config.modality(key)
            if value is None:
                raise ValueError(f"modality {key} ({modality.name!r}) is required by fusion {self.config.fusion!r}")
            if modality.is_text:
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    raise TypeError(f"modality {key} ({modality.name!r}) is text: pass strings or int64 ids")
            elif not isinstance(value, torch.Tensor):
                raise TypeError(f"modality {key} ({modality.name!r}) is an image: pass a (B, C, H, W) tensor")
            else:
                _check_unit_range(value, key, modality.name)
                value = value.to(self.device, torch.float32)
            frozen = detach_frozen and not self.trained_in_stage2(key)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                outputs[key] = self.encoders[key].backbone_features(value)
        return outputs

    def features_from_backbone(self, outputs: dict[str, Any], detach_frozen: bool = False
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features F (B, N, D) and the text pad mask from `backbone_outputs` (cached or fresh)."""
        parts, pad_mask = [], None
        for key in self.plan.modalities:
            frozen = detach_frozen and not self.trained_in_stage2(key)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                projected = self.encoders[key].project(outputs[key])
            if isinstance(projected, tuple):
                projected, pad_mask = projected
            parts.append(projected)
        if parts[0].shape[0] != parts[-1].shape[0]:
            raise ValueError(f"batch sizes differ between modalities: {[p.shape[0] for p in parts]}")
        return torch.cat(parts, dim=1), pad_mask

    def _encode(
        self, a: ModalityInput, b: ModalityInput, detach_frozen: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.features_from_backbone(self.backbone_outputs(a, b, detach_frozen), detach_frozen)

    def encode(self, a: ModalityInput, b: ModalityInput = None) -> torch.Tensor:
        """Encoder features F (B, N, D): modality A's T tokens, then B's (only one for single_*)."""
        return self._encode(a, b)[0]

    def encode_with_pad_mask(self, a: ModalityInput, b: ModalityInput = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`encode`, and the text modality's (B, T) pad mask (None without text): a head that pools
        words needs it beside the features."""
        return self._encode(a, b)

    # ------------------------------------------------------------------ forward
    def forward(self, a: ModalityInput, b: ModalityInput = None) -> MangoOutput:
        """Encode both modalities, run the flow and the head.

        Images are float (B, C, H, W) tensors in [0, 1] at ``config.image_size``, in the units the
        checkpoint was trained with: prepare them with `mango.data.transforms` (colour: 8-bit / 255,
        ``rgb_to_unit``; NYU-style depth: metres / 10, clipped, holes filled, ``depth_to_unit`` and
        ``fill_depth_holes``; Taskonomy domains: ``decode_domain``). Values outside [0, 1], NaN and
        integer tensors are refused. Text is a list of strings (or int64 ids); the first
        ``config.text_context_length`` tokens of each are read (start and end tokens included).

        Returns a `MangoOutput`: ``output`` (segmentation logits (B, C, H, W); a translated image
        (B, C, H, W) in the target's [0, 1] units, not clamped; or genre logits (B, G), a genre being
        predicted where its sigmoid passes ``config.thresholds()``, in the order of
        ``config.class_names``), ``z`` (the latent, B × N × D) and ``bits_per_dim`` (B,), the exact
        negative log-likelihood of the features.
        """
        features, pad_mask = self._encode(a, b)
        return self.forward_features(features, pad_mask)

    def forward_features(self, features: torch.Tensor, pad_mask: torch.Tensor | None = None) -> MangoOutput:
        """Flow, likelihood and head on given features (B, N, D) (e.g. from `encode`)."""
        if self.flow is None:
            return MangoOutput(self.head_output(features, pad_mask), features, None, None, features, pad_mask)
        z, logdet = self.flow(features)
        if features.requires_grad and torch.is_grad_enabled():
            z_nll, logdet_nll = self.flow(features.detach())  # the NLL must not reach the encoders
        else:
            z_nll, logdet_nll = z, logdet
        log_prob = gaussian_log_prob(z_nll) + logdet_nll.float()
        bits_per_dim = -log_prob / (features.shape[1] * features.shape[2] * math.log(2))
        return MangoOutput(self.head_output(z, pad_mask), z, log_prob, bits_per_dim, features, pad_mask)

    def add_feature_noise(self, features: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Training only: Gaussian noise on the image modalities' features, `feature_noise` times
        each channel's standard deviation in the batch. The flow then learns a smoothed density
        and the decoders (trained on noisy features alike in stage 1) decode what it samples.
        A text modality gets `text_feature_noise` on its word positions (its pads stay zero): it
        has no decoder, so there the noise only regularises the flow and head on few plots."""
        scales = {k: self.config.text_feature_noise if self.config.modality(k).is_text else self.config.feature_noise
                  for k in self.plan.modalities}
        if not (self.training and any(s > 0 for s in scales.values())):
            return features
        words = None if pad_mask is None else ~pad_mask
        spans = split_tokens(features, self.plan.modalities, self.tokens_per_modality)
        noisy = [_noisy(t, scales[k], words if self.config.modality(k).is_text else None) for k, t in spans.items()]
        return torch.cat(noisy, dim=1)

    def drop_words(self, features: torch.Tensor, pad_mask: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training only: each word position of a plot becomes a pad (zero features, masked) with
        chance `text_word_dropout`, so the head cannot lean on a few words of 978 plots. Every plot
        keeps at least one word; the image modalities are untouched."""
        p = self.config.text_word_dropout
        if not (self.training and p > 0) or pad_mask is None:
            return features, pad_mask
        words = ~pad_mask
        dropped = words & (torch.rand(pad_mask.shape, device=pad_mask.device) < p)
        emptied = ~(words & ~dropped).any(dim=1)  # a plot that would lose every word keeps them all
        dropped[emptied] = False
        if not dropped.any():
            return features, pad_mask
        spans = split_tokens(features, self.plan.modalities, self.tokens_per_modality)
        parts = [t.masked_fill(dropped[..., None], 0.0) if self.config.modality(k).is_text else t
                 for k, t in spans.items()]
        return torch.cat(parts, dim=1), pad_mask | dropped

    def head_output(self, z: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The task prediction from Z (or from features, for baselines without a flow). `pad_mask`
        (B, T) marks the text modality's pad positions, for a head that pools words only."""
        tokens = split_tokens(z, self.plan.modalities, self.tokens_per_modality)
        masks = {k: pad_mask if self.config.modality(k).is_text else None for k in tokens}
        outputs = [head([tokens[k] for k in keys], [masks[k] for k in keys])
                   for head, keys in zip(self.heads, self.plan.head_inputs)]
        return combine_outputs(outputs)

    def decode(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pixels (B, C, H, W) for each image modality, keyed by modality name. A text modality
        has no decoder and is left out (no nearest-token readout)."""
        tokens = split_tokens(features, self.plan.modalities, self.tokens_per_modality)
        return {self.config.modality(k).name: decoder(tokens[k]) for k, decoder in self.decoders.items()}

    # ------------------------------------------------------------------ interpretability
    def _require_flow(self, what: str) -> nn.Module:
        if self.flow is None:
            raise ValueError(f"{what} needs a flow; fusion {self.config.fusion!r} has none")
        return self.flow

    # Reading the model (attention, rollout, round trip) runs in eval mode, whatever mode it is in:
    # looking must neither change it (an uninitialised ActNorm, BatchNorm statistics) nor vary (dropout).
    def attention_maps(self, a: ModalityInput, b: ModalityInput = None) -> list[Any]:
        """The flow's ICA attention matrices (mango.flow.AttentionMap); [] without ICA layers."""
        if self.flow is None:
            return []
        with evaluating(self), torch.no_grad():
            return self.flow.attention_maps(self.encode(a, b))

    def rollout(self, a: ModalityInput, b: ModalityInput = None) -> torch.Tensor:
        """(B, N, N) token-mixing matrix of the whole flow in original token positions."""
        flow = self._require_flow("rollout")
        with evaluating(self), torch.no_grad():
            return flow.rollout(self.encode(a, b))

    def roundtrip_error(self, a: ModalityInput, b: ModalityInput = None) -> float:
        """max |F - G^-1(G(F))| on these inputs."""
        flow = self._require_flow("roundtrip_error")
        with evaluating(self), torch.no_grad():
            return float(flow.roundtrip_error(self.encode(a, b)))

    def _from_latent(self, z: torch.Tensor, pad_mask: torch.Tensor | None = None) -> dict[str, Any]:
        features, _ = self._require_flow("sampling").inverse(z)
        return {"z": z, "features": features, **self.decode(features), "output": self.head_output(z, pad_mask)}

    def _noise(self, shape: tuple[int, ...], temperature: float, generator: torch.Generator | int | None) -> torch.Tensor:
        if isinstance(generator, int) and not isinstance(generator, bool):
            generator = torch.Generator(self.device).manual_seed(generator)
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        device = generator.device if generator is not None else self.device
        return (torch.randn(shape, generator=generator, device=device) * temperature).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | int | None = None) -> dict[str, Any]:
        """Z ~ N(0, temperature^2 I) -> F = G^-1(Z) -> decoded modalities and the head's prediction
        (a sample has no plot, so a head that pools words reads every text position).

        ``generator`` (a torch.Generator or an int seed) makes the draw repeatable. Bundled
        checkpoints record the temperature whose samples read most like real inputs in
        ``config.metadata["sampling"]["temperature"]``. Returns {"z", "features",
        <image modality name>: pixels in [0, 1], ..., "output"}.
        """
        self._require_flow("sample")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n (how many samples) must be a whole number >= 1, got {n!r}")
        shape = (n, len(self.plan.modalities) * self.tokens_per_modality, self.config.dim)
        return self._from_latent(self._noise(shape, temperature, generator))

    def _modality_key(self, modality: str) -> str:
        if modality in ("a", "b"):
            return modality
        for key in ("a", "b"):
            if self.config.modality(key).name == modality:
                return key
        raise ValueError(f"modality must be 'a', 'b', {self.config.a.name!r} or {self.config.b.name!r}, got {modality!r}")

    @torch.no_grad()
    def resample_modality(
        self, a: ModalityInput, b: ModalityInput, modality: str, temperature: float = 1.0,
        generator: torch.Generator | int | None = None,
    ) -> dict[str, Any]:
        """Encode (a, b), redraw only one modality's latent tokens, invert. The kept modality's features
        change too (the flow mixes the modalities), so this is not an exact conditional sample of the
        redrawn modality. Same keys as `sample`; the head reads the input plot's word positions."""
        self._require_flow("resample_modality")
        key = self._modality_key(modality)
        features, pad_mask = self.encode_with_pad_mask(a, b)
        z = self.flow(features)[0].clone()
        t = self.tokens_per_modality
        span = slice(0, t) if key == "a" else slice(t, 2 * t)
        z[:, span] = self._noise(tuple(z[:, span].shape), temperature, generator)
        return self._from_latent(z, pad_mask)

    @torch.no_grad()
    def interpolate(
        self, x1: tuple[ModalityInput, ModalityInput], x2: tuple[ModalityInput, ModalityInput],
        steps: int = 8, mode: str = "linear",
    ) -> dict[str, Any]:
        """Walk from Z(x1) to Z(x2) in `steps` points (ends included; "linear" or "slerp") and
        invert each. x1, x2 are single examples (a, b); the outputs' batch axis is the step.
        Same keys as `sample`, plus "t" (steps,); the head reads the positions that hold a word in
        either plot."""
        flow = self._require_flow("interpolate")
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        f1, pad1 = self.encode_with_pad_mask(*map(_one_example, x1))
        f2, pad2 = self.encode_with_pad_mask(*map(_one_example, x2))
        z1, z2 = flow(f1)[0], flow(f2)[0]
        if z1.shape[0] != 1 or z2.shape[0] != 1:
            raise ValueError("interpolate takes single examples (batch of 1)")
        t = torch.linspace(0, 1, steps, device=z1.device)
        if mode == "linear":
            w1, w2 = 1 - t, t
        elif mode == "slerp":
            cos = F.cosine_similarity(z1.flatten(), z2.flatten(), dim=0).clamp(-1 + 1e-7, 1 - 1e-7)
            omega = torch.arccos(cos)
            w1, w2 = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
        else:
            raise ValueError(f"mode must be 'linear' or 'slerp', got {mode!r}")
        z = w1.view(-1, 1, 1) * z1 + w2.view(-1, 1, 1) * z2
        pad_mask = None if pad1 is None or pad2 is None else (pad1 & pad2).expand(steps, -1)
        return {"t": t, **self._from_latent(z, pad_mask)}

    # ------------------------------------------------------------------ training
    def task_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (ignore 255) / L1 / BCE-with-logits or the asymmetric loss, by task;
        `class_weights` weigh the segmentation classes, or the genres' positives."""
        target = target.to(output.device)
        task = self.config.task
        weights = torch.tensor(self.config.class_weights, device=output.device) if self.config.class_weights else None
        if task == "segmentation":
            target = target.long()
            if not (target != 255).any():
                return output.sum() * 0.0  # nothing labelled: no signal, not NaN
            return F.cross_entropy(output, target, weight=weights, ignore_index=255)
        if task == "translation":
            return F.l1_loss(output, target.float())
        if self.config.genre_loss == "asl":
            return asymmetric_loss(output, target, weights)
        return F.binary_cross_entropy_with_logits(output, target.float(), pos_weight=weights)

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 2: L = L_task + nll_weight * bits/dim. Image encoders are frozen unless
        finetune_image_encoders; the text tower is trained by the task loss unless
        finetune_text_encoder is False; the NLL never reaches either. A batch may carry
        precomputed `backbone` outputs (see `backbone_outputs`) instead of the inputs."""
        if "backbone" in batch:
            features, pad_mask = self.features_from_backbone(batch["backbone"], detach_frozen=True)
        else:
            features, pad_mask = self._encode(batch.get("a"), batch.get("b"), detach_frozen=True)
        features, pad_mask = self.drop_words(features, pad_mask)
        features = self.add_feature_noise(features, pad_mask)
        out = self.forward_features(features, pad_mask)
        task = self.task_loss(out.output, batch["target"])
        total = task
        logs = {"task_loss": float(task.detach())}
        if out.bits_per_dim is not None:
            bpd = out.bits_per_dim.mean()
            total = task + self.config.nll_weight * bpd
            logs["bits_per_dim"] = float(bpd.detach())
            min_diagonal = getattr(self.flow, "min_attention_diagonal", None)
            if min_diagonal is not None:  # SPEC 2: the conditioning of the ICA layers, tracked
                logs["min_attention_diagonal"] = float(min_diagonal)
        logs["loss"] = float(total.detach())
        return total, logs

    def autoencoder_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 1: reconstruction MSE (normalised pixel space) summed over image modalities."""
        if not self.decoders:
            raise ValueError("this model has no image modality to autoencode")
        total: torch.Tensor | None = None
        logs: dict[str, float] = {}
        for key, decoder in self.decoders.items():
            pixels = batch[key].to(self.device, torch.float32)
            tokens = self.encoders[key](pixels)
            loss = decoder.reconstruction_loss(_noisy(tokens, self.config.feature_noise), pixels)
            logs[f"recon_{self.config.modality(key).name}"] = float(loss.detach())
            total = loss if total is None else total + loss
        assert total is not None
        logs["loss"] = float(total.detach())
        return total, logs

    def num_parameters(self, part: str | None = None) -> int:
        """Parameter count of the whole model or of "encoders", "decoders", "flow", "heads"."""
        module = self if part is None else getattr(self, part)
        return 0 if module is None else sum(p.numel() for p in module.parameters())


def asymmetric_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """ASL (Ridnik et al. 2021) with the paper's multi-label setting (gamma- 4, gamma+ 0, margin
    0.05), averaged over films and genres like BCE: easy negatives, which are most of the 21 or so
    absent genres of a film, stop drowning the few positives of a rare genre."""
    loss = AsymmetricLossMultiLabel(gamma_neg=4.0, gamma_pos=0.0, clip=0.05, reduction="mean", pos_weight=pos_weight)
    return loss(logits, target.float())


def _noisy(tokens: torch.Tensor, scale: float, keep: torch.Tensor | None = None) -> torch.Tensor:
    """tokens + scale * (per-channel std over batch and tokens, detached) * N(0, 1); with `keep`
    (B, T), only the kept positions get noise and give the std (a plot's words, not its pads)."""
    if keep is None:
        keep = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if scale <= 0 or not keep.any():
        return tokens
    std = tokens.detach().float()[keep].std(dim=0)
    return tokens + scale * std.to(tokens.dtype) * torch.randn_like(tokens) * keep[..., None].to(tokens.dtype)


_COLOUR = "colour: 8-bit values / 255 (mango.data.transforms.rgb_to_unit)"
_UNITS = {  # how each modality's pixels become [0, 1] (mango.data.transforms), for the error below
    "rgb": _COLOUR,
    "poster": _COLOUR,
    "depth": "depth: metres / 10, clipped, its zeros filled (mango.data.transforms.depth_to_unit, fill_depth_holes)",
}


def _check_unit_range(value: torch.Tensor, key: str, name: str) -> None:
    """Only a float image in [0, 1] passes: anything else (integers, NaN, another scale) would be read
    as garbage without a word, so it is refused with the way to prepare it."""
    units = _UNITS.get(name, f"Taskonomy's {name}: mango.data.transforms.decode_domain({name!r}, raw)"
                       if name in TASKONOMY_DOMAINS else "see mango.data.transforms")
    if not value.is_floating_point():
        raise TypeError(f"modality {key} ({name!r}) is a {value.dtype} tensor: the model reads floats in [0, 1]; "
                        f"{units}")
    if value.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(value.detach()))
    if math.isnan(low) or math.isnan(high) or not (-1e-3 <= low and high <= 1 + 1e-3):
        seen = "NaN values" if math.isnan(low) or math.isnan(high) else f"values from {low:.4g} to {high:.4g}"
        raise ValueError(f"modality {key} ({name!r}) holds {seen}: the model reads [0, 1]; {units}")


def _one_example(x: ModalityInput) -> ModalityInput:
    """A single example as a batch of one: (C, H, W) -> (1, C, H, W); "plot" -> ["plot"]."""
    if isinstance(x, str):
        return [x]
    if isinstance(x, torch.Tensor) and (x.ndim == 3 and x.is_floating_point() or x.ndim == 1):
        return x[None]
    return x
