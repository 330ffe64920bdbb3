"""Model configuration: one dataclass for every task and baseline, named presets, JSON round trip.

A config is the whole description of a model: a checkpoint is `config.json` (this, as JSON) plus
the weights, so everything needed to rebuild the network lives here and nowhere else.
`format_version` is bumped whenever a field changes meaning; a file from a newer version is
refused with a message naming both versions instead of being half-understood, and a file from an
older version is read with the values that version meant (`_upgrade`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# Class vocabularies come from the data layer, so labels and names can never drift apart.
from mango.atomic import atomic_write_text
from mango.data.constants import MMIMDB_GENRES, NYUDV2_CLASSES

FORMAT_VERSION = 2

Task = Literal["segmentation", "translation", "genre"]
Fusion = Literal["mango", "coupling", "concat", "late", "single_a", "single_b"]
FlowKind = Literal["ica", "coupling"]

TASKS: tuple[str, ...] = ("segmentation", "translation", "genre")
FUSIONS: tuple[str, ...] = ("mango", "coupling", "concat", "late", "single_a", "single_b")
FLOW_FUSIONS: tuple[str, ...] = ("mango", "coupling")
FLOWS: tuple[str, ...] = ("ica", "coupling")
PARTITIONS: tuple[str, ...] = ("mmca", "imca", "lica")
ICA_FORMS: tuple[str, ...] = ("gated", "identity_plus", "diag_bias", "literal")
IMAGE_ENCODERS: tuple[str, ...] = ("vit", "efficientnet_lite0")  # from scratch; pretrained CNN
TEXT_ENCODERS: tuple[str, ...] = ("clip", "minilm_l6")  # open_clip tower from scratch; pretrained MiniLM
DECODERS: tuple[str, ...] = ("conv", "mae")
HEAD_POOLINGS: tuple[str, ...] = ("mean", "words")
GENRE_LOSSES: tuple[str, ...] = ("bce", "asl")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

class ConfigError(ValueError):
    """A config that cannot describe a valid model (the message names the field)."""


class ConfigVersionError(ConfigError):
    """A config written by a newer MANGO than this one (the message names both versions)."""


@dataclass
class ModalityConfig:
    """One input (or translation target) modality.

    Image modalities are normalised inside the model with this fixed per-channel mean/std, so
    callers always pass [0, 1] tensors (a pretrained backbone applies its own input normalisation
    on top; mean/std still define the decoders' target scale and the "removed" baseline).
    `channels` is 0 for text. `encoder` picks the backbone: "vit" (trained from scratch) or
    "efficientnet_lite0" (ImageNet weights, a one-channel image is replicated to three) for
    images; "clip" (open_clip's tower, from scratch) or "minilm_l6" (all-MiniLM-L6-v2) for text.
    """

    name: str
    kind: Literal["image", "text"] = "image"
    channels: int = 3
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    encoder: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("image", "text"):
            raise ConfigError(f"modality {self.name!r}: kind must be 'image' or 'text', got {self.kind!r}")
        if self.kind == "text":
            self.channels, self.mean, self.std = 0, (), ()
            self.encoder = self.encoder or "clip"
            if self.encoder not in TEXT_ENCODERS:
                raise ConfigError(f"modality {self.name!r}: a text encoder is one of {TEXT_ENCODERS}, got {self.encoder!r}")
            return
        self.encoder = self.encoder or "vit"
        if self.encoder not in IMAGE_ENCODERS:
            raise ConfigError(f"modality {self.name!r}: an image encoder is one of {IMAGE_ENCODERS}, got {self.encoder!r}")
        if self.channels < 1:
            raise ConfigError(f"modality {self.name!r}: an image needs channels >= 1, got {self.channels}")
        if not self.mean:
            self.mean = IMAGENET_MEAN if self.channels == 3 and self.name == "rgb" else (0.5,) * self.channels
        if not self.std:
            self.std = IMAGENET_STD if self.channels == 3 and self.name == "rgb" else (0.25,) * self.channels
        self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(
                f"modality {self.name!r}: mean/std need {self.channels} values, "
                f"got {len(self.mean)}/{len(self.std)}"
            )
        if min(self.std) <= 0:
            raise ConfigError(f"modality {self.name!r}: std must be positive, got {self.std}")

    @property
    def is_text(self) -> bool:
        return self.kind == "text"

    @property
    def is_pretrained(self) -> bool:
        """Does the encoder start from pretrained weights (fetched through mango.models.weights)?"""
        return self.encoder in ("efficientnet_lite0", "minilm_l6")


def rgb(name: str = "rgb", encoder: str = "") -> ModalityConfig:
    return ModalityConfig(name, "image", 3, IMAGENET_MEAN, IMAGENET_STD, encoder)


def gray(name: str, encoder: str = "") -> ModalityConfig:
    return ModalityConfig(name, "image", 1, encoder=encoder)


def text(name: str = "plot", encoder: str = "") -> ModalityConfig:
    return ModalityConfig(name, "text", 0, encoder=encoder)


# Known timm MAE encoders: (width, depth, heads, patch). Checked so a pretrained name and the
# architecture fields can never disagree silently.
MAE_ENCODERS: dict[str, tuple[int, int, int, int]] = {
    "vit_base_patch16_224.mae": (768, 12, 12, 16),
    "vit_large_patch16_224.mae": (1024, 24, 16, 16),
    "vit_huge_patch14_224.mae": (1280, 32, 16, 14),
}


@dataclass
class MangoConfig:
    """Everything that defines a MANGO model (or one of its baselines), JSON-serialisable.

    Fusion kinds: "mango" (ICA flow, or the coupling flow with flow="coupling"), "coupling"
    (shorthand for fusion "mango" with flow "coupling"), "concat" (features of both modalities
    straight into the head, no flow), "late" (one head per modality, outputs averaged), and
    "single_a" / "single_b" (one modality only). Baselines without a flow have no likelihood.
    """

    task: Task = "segmentation"
    a: ModalityConfig = field(default_factory=rgb)
    b: ModalityConfig = field(default_factory=lambda: gray("depth"))
    target: ModalityConfig | None = None  # translation only: the generated modality

    # tokens
    image_size: int = 128
    patch_size: int = 16
    dim: int = 128  # D, the width of every token the flow sees

    # image encoders (timm ViT) and MAE-style decoders
    encoder_width: int = 128
    encoder_depth: int = 4
    encoder_heads: int = 4
    encoder_pretrained: str | None = None  # e.g. "vit_base_patch16_224.mae" (timm name.tag)
    decoder: str = "conv"  # image decoders and the translation head: "conv" upsampler or "mae" (ViT blocks)
    decoder_width: int = 128
    decoder_depth: int = 1
    decoder_heads: int = 4
    finetune_image_encoders: bool = False  # stage 2: image encoders frozen (trained in stage 1)
    finetune_text_encoder: bool = True  # the text tower has no stage 1: the task loss trains it
    finetune_pretrained: bool = False  # pretrained backbones (EfficientNet, MiniLM) stay frozen, in eval mode
    pretrained_fingerprints: dict[str, str] = field(default_factory=dict)  # weights name -> fingerprint

    # text encoder (open_clip text tower)
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_context_length: int = 64  # tokens the tower reads; features are padded to T
    text_pretrained: str | None = None  # e.g. "ViT-B-32:openai" (open_clip model:tag)
    text_quick_gelu: bool = False  # True for OpenAI CLIP weights

    # fusion and flow
    fusion: Fusion = "mango"
    flow: FlowKind = "ica"
    num_blocks: int = 2
    partitions: tuple[str, ...] = PARTITIONS
    heads: int = 1  # ICA attention heads
    key_dim: int | None = None
    ica_form: str = "gated"  # see mango.flow.ica: gated, identity_plus, diag_bias, literal
    # The default ICA: the gated form with the attention-routed scale and shift. Its gate may close
    # (alpha -> 0); the "demo" preset puts a floor under it (see PRESETS).
    gate_init: float = 0.1  # gated form: alpha at initialisation
    gate_range: tuple[float, float] = (0.0, 0.5)  # gated form: alpha's bounds (diagonal dominance)
    value_affine: bool = True  # ICA value path: a scale and shift from the attended X1 context
    ica_exclude_self: bool = False  # gated form: S over earlier tokens only, so A_ii = 1 - alpha (mango.flow.ica)
    ica_unit_diagonal: bool = False  # gated form: A's rows divided by A_ii, so the mixing adds nothing to log|det|
    diag_bias_init: float = 10.0  # diag_bias form only
    whitening: bool = True  # a Gaussian whitening first, fitted to the training features (mango.flow.GaussianWhitening)
    whitening_scale: bool = False  # the whitening also scales each position and channel (needed where positions differ in spread, e.g. text pads)
    whitening_channels: bool = True  # the whitening starts by decorrelating the channels; False: it only centres (and scales) each position and channel
    actnorm: bool = False
    coupling_hidden: int | None = None

    # task head
    head_width: int = 128  # genre: 0 makes the head one linear layer on the pooled tokens
    head_depth: int = 1  # translation decoder blocks
    head_dropout: float = 0.1  # genre head: dropout before its last layer
    head_pooling: str = "mean"  # genre head: "mean" over all T positions of each half, or "words": the text half over its word positions only
    head_token_mlp: bool = False  # genre head: its hidden layer reads each token before the pooling (token-wise MLP, mean, linear)
    num_classes: int = 0  # derived from class_names when 0
    class_names: tuple[str, ...] = ()
    class_weights: tuple[float, ...] = ()  # segmentation: cross-entropy weights; genre: BCE positive weights
    decision_thresholds: tuple[float, ...] = ()  # genre: per-genre probability thresholds (0.5 when empty)
    genre_loss: str = "bce"  # genre: "bce" (with class_weights as positive weights) or "asl" (asymmetric loss, timm)
    nll_weight: float = 0.1  # lambda in L = L_task + lambda * bits/dim
    feature_noise: float = 0.0  # training: noise on image features (x their per-channel std), for NLL, head and decoders
    text_feature_noise: float = 0.0  # training: the same on a text modality's features, a regulariser for few plots
    text_word_dropout: float = 0.0  # training: chance that a plot's word position becomes a pad (each plot keeps one word)

    metadata: dict[str, Any] = field(default_factory=dict)  # training data, metrics, provenance
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        for name in ("a", "b", "target"):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, ModalityConfig(**_known(value, ModalityConfig, f"{name} modality")))
        self.partitions = tuple(self.partitions)
        self.class_names = tuple(self.class_names)
        self.gate_range = tuple(float(v) for v in self.gate_range)  # type: ignore[assignment]
        self.class_weights = tuple(float(v) for v in self.class_weights)
        self.decision_thresholds = tuple(float(v) for v in self.decision_thresholds)
        self.metadata = dict(self.metadata)
        self.pretrained_fingerprints = dict(self.pretrained_fingerprints)
        self._check()

    def _check(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"MangoConfig: {msg}")

        if self.format_version > FORMAT_VERSION:
            raise ConfigVersionError(
                f"MangoConfig: format_version {self.format_version} was written by a newer MANGO; "
                f"this one reads format_version <= {FORMAT_VERSION}. Upgrade mango."
            )
        if self.task not in TASKS:
            raise bad(f"task must be one of {TASKS}, got {self.task!r}")
        if self.fusion not in FUSIONS:
            raise bad(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.fusion == "coupling":
            self.flow = "coupling"
        if self.flow not in FLOWS:
            raise bad(f"flow must be one of {FLOWS}, got {self.flow!r}")
        unknown = [p for p in self.partitions if p not in PARTITIONS]
        if unknown or (self.flow == "ica" and not self.partitions):
            raise bad(f"partitions must be a non-empty subset of {PARTITIONS}, got {self.partitions}")
        if self.ica_form not in ICA_FORMS:
            raise bad(f"ica_form must be one of {ICA_FORMS}, got {self.ica_form!r}")
        if self.ica_exclude_self and self.ica_form != "gated":
            raise bad(f"ica_exclude_self needs ica_form 'gated', got {self.ica_form!r}")
        if self.ica_unit_diagonal and self.ica_form != "gated":
            raise bad(f"ica_unit_diagonal needs ica_form 'gated', got {self.ica_form!r}")
        if self.decoder not in DECODERS:
            raise bad(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.image_size % self.patch_size:
            raise bad(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for key in ("a", "b"):
            modality = getattr(self, key)
            if modality.encoder == "efficientnet_lite0" and self.patch_size not in (8, 16, 32):
                raise bad(f"modality {modality.name!r}: EfficientNet-Lite0 gives tokens at stride 8, 16 or 32, "
                          f"so patch_size must be 8, 16 or 32, got {self.patch_size}")
        if self.tokens_per_modality % 2:
            raise bad(f"tokens per modality T = {self.tokens_per_modality} must be even (IMCA halves)")
        if self.encoder_width % self.encoder_heads or self.decoder_width % self.decoder_heads:
            raise bad("encoder_width/decoder_width must be divisible by encoder_heads/decoder_heads")
        if self.task == "translation" and self.head_width % self.decoder_heads:
            raise bad(f"head_width {self.head_width} not divisible by decoder_heads {self.decoder_heads}")
        if self.text_width % self.text_heads:
            raise bad(f"text_width {self.text_width} not divisible by text_heads {self.text_heads}")
        if self.dim % self.heads:
            raise bad(f"dim {self.dim} not divisible by heads {self.heads}")
        uses_text = self.a.is_text or self.b.is_text
        if uses_text and not 1 <= self.text_context_length <= self.tokens_per_modality:
            raise bad(
                f"text_context_length {self.text_context_length} must be in [1, T = "
                f"{self.tokens_per_modality}] (text is padded to T, never longer)"
            )
        if self.head_pooling not in HEAD_POOLINGS:
            raise bad(f"head_pooling must be one of {HEAD_POOLINGS}, got {self.head_pooling!r}")
        if self.head_pooling == "words" and not (self.task == "genre" and uses_text):
            raise bad("head_pooling 'words' pools a text modality's word positions: it needs task 'genre' with a text modality")
        if self.genre_loss not in GENRE_LOSSES:
            raise bad(f"genre_loss must be one of {GENRE_LOSSES}, got {self.genre_loss!r}")
        if self.head_width < (0 if self.task == "genre" else 1):
            raise bad(f"head_width must be >= 1 (0 allowed for genre: a linear head), got {self.head_width}")
        if self.head_token_mlp and not (self.task == "genre" and self.head_width >= 1):
            raise bad(f"head_token_mlp is a genre head's hidden layer: it needs task 'genre' and head_width >= 1, "
                      f"got task {self.task!r}, head_width {self.head_width}")
        if self.nll_weight < 0:
            raise bad(f"nll_weight must be >= 0, got {self.nll_weight}")
        if self.feature_noise < 0 or self.text_feature_noise < 0:
            raise bad(f"feature noise must be >= 0, got {self.feature_noise} (images) and "
                      f"{self.text_feature_noise} (text)")
        if not 0 <= self.text_word_dropout < 1:
            raise bad(f"text_word_dropout must be in [0, 1), got {self.text_word_dropout}")
        if self.encoder_pretrained is not None:
            arch = MAE_ENCODERS.get(self.encoder_pretrained)
            if arch is not None and arch != (
                self.encoder_width, self.encoder_depth, self.encoder_heads, self.patch_size
            ):
                raise bad(
                    f"encoder_pretrained {self.encoder_pretrained!r} is a ViT with (width, depth, "
                    f"heads, patch) = {arch}, but the config has ({self.encoder_width}, "
                    f"{self.encoder_depth}, {self.encoder_heads}, {self.patch_size})"
                )
        used = self.used_modalities
        for key in used:
            modality = getattr(self, key)
            if modality.is_text and self.task in ("segmentation", "translation"):
                raise bad(f"task {self.task!r} needs image modalities, modality {key} is text")
        if self.a.is_text and self.b.is_text:
            raise bad("at most one modality can be text")
        if self.task == "translation":
            if self.target is None:
                self.target = rgb()
            if self.target.is_text:
                raise bad("a translation target must be an image modality")
            self.num_classes = 0
        else:
            if self.target is not None:
                raise bad(f"target is for translation only, task is {self.task!r}")
            if not self.class_names and not self.num_classes:
                self.class_names = NYUDV2_CLASSES if self.task == "segmentation" else MMIMDB_GENRES
            if self.class_names and self.num_classes and self.num_classes != len(self.class_names):
                raise bad(f"num_classes {self.num_classes} != {len(self.class_names)} class_names")
            self.num_classes = self.num_classes or len(self.class_names)
            if self.num_classes < 1:
                raise bad("num_classes must be >= 1")
        for name in ("class_weights", "decision_thresholds"):
            values = getattr(self, name)
            if values and len(values) != self.num_classes:
                raise bad(f"{name} needs one value per class ({self.num_classes}), got {len(values)}")
        if self.decision_thresholds and not all(0 < t < 1 for t in self.decision_thresholds):
            raise bad("decision_thresholds must lie in (0, 1)")

    # ------------------------------------------------------------------ derived sizes
    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols) of an image modality; tokens are in raster order over it."""
        side = self.image_size // self.patch_size
        return side, side

    @property
    def tokens_per_modality(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    def has_flow(self) -> bool:
        return self.fusion in FLOW_FUSIONS

    def thresholds(self) -> tuple[float, ...]:
        """Genre: the probability above which each genre is predicted (0.5 unless tuned)."""
        return self.decision_thresholds or (0.5,) * self.num_classes

    @property
    def used_modalities(self) -> tuple[str, ...]:
        """Which of "a", "b" the model encodes ("single_a" uses only "a")."""
        return {"single_a": ("a",), "single_b": ("b",)}.get(self.fusion, ("a", "b"))

    def modality(self, key: str) -> ModalityConfig:
        if key not in ("a", "b"):
            raise ConfigError(f"modality key must be 'a' or 'b', got {key!r}")
        return getattr(self, key)

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, task: Task = "segmentation", **overrides: Any) -> "MangoConfig":
        """A named size ("tiny": for tests; "demo": trains on 2 CPU cores in minutes, pretrained
        encoders; "paper": the published scale) with the task's default modalities and the
        preset's encoders; any field can be overridden by keyword."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; known: {TASKS}")
        values: dict[str, Any] = {"task": task, **task_modalities(task, name), **PRESETS[name],
                                  **TASK_PRESETS.get((name, task), {})}
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown MangoConfig field(s) {sorted(unknown)}")
        values.update(overrides)
        values.setdefault("metadata", {})
        values["metadata"] = {"preset": name, **values["metadata"]}
        return cls(**values)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return json.loads(json.dumps(out))  # tuples -> lists, and proves it is JSON-clean

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the JSON whole or not at all (mango.atomic)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "MangoConfig":
        """Rebuild from `to_dict` output. A newer format_version, a missing format_version or an
        unknown field is an error naming it (never silently dropped)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise ConfigError(f"{source}: no integer format_version; not a MANGO config")
        if version > FORMAT_VERSION:
            raise ConfigVersionError(
                f"{source}: format_version {version} was written by a newer MANGO; this one "
                f"reads format_version <= {FORMAT_VERSION}. Upgrade mango to load it."
            )
        try:
            return cls(**_known(_upgrade(data), cls, source))
        except TypeError as err:  # e.g. a field of the wrong shape
            raise ConfigError(f"{source}: {err}") from err

    @classmethod
    def from_json(cls, text_: str, source: str = "config") -> "MangoConfig":
        try:
            data = json.loads(text_)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source}: not valid JSON ({err})") from err
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> "MangoConfig":
        path = Path(path)
        return cls.from_json(path.read_text(encoding="utf-8"), source=str(path))


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A config of an older format_version, with the values that version meant for fields it lacked.

    Version 1 (the first release) had no ica_form (its ICA layers were the diagonal-bias form), only
    MAE-style decoders and no whitening layer; version 2 changed those defaults. Fields added since
    default to what the code did before them, but for `whitening` (on by default): every field is
    written, so a file without it predates the whitening layer.
    """
    data = dict(data)
    if data["format_version"] < 2:
        data.setdefault("ica_form", "diag_bias")
        data.setdefault("decoder", "mae")
        data["format_version"] = 2
    data.setdefault("whitening", False)
    return data


def _known(data: dict[str, Any], klass: type, source: str) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown} (written by another MANGO version?)")
    return dict(data)


# The encoders each preset starts from. "demo" uses pretrained weights that install offline with
# pip (EfficientNet-Lite0, all-MiniLM-L6-v2: mango.models.weights); "paper" trains ViT encoders and
# a CLIP-style text tower, as the paper's MAE/CLIP setup (pretrained when downloadable).
PRESET_ENCODERS: dict[str, dict[str, str]] = {
    "tiny": {"image": "vit", "text": "clip"},
    "demo": {"image": "efficientnet_lite0", "text": "minilm_l6"},
    "paper": {"image": "vit", "text": "clip"},
}


def task_modalities(task: str, preset: str = "demo") -> dict[str, ModalityConfig]:
    """The task's default modalities ("a", "b", and "target" for translation) with the preset's encoders."""
    image, words = PRESET_ENCODERS[preset]["image"], PRESET_ENCODERS[preset]["text"]
    if task == "segmentation":  # NYUDv2 / SUN RGB-D: RGB + depth -> 40-class segmentation
        return {"a": rgb("rgb", image), "b": gray("depth", image)}
    if task == "translation":  # Taskonomy: reshading + edge_texture -> rgb (the common default setting)
        return {"a": gray("reshading", image), "b": gray("edge_texture", image), "target": rgb()}
    return {"a": rgb("poster", image), "b": text("plot", words)}  # MM-IMDb: poster + plot -> 23 genres


PRESETS: dict[str, dict[str, Any]] = {
    # 32 px, 8 px patches -> 4x4 grid, T = 16; D = 32; 1 block; encoders from scratch: builds and runs
    # in milliseconds, for tests and smoke checks (it learns little).
    "tiny": dict(
        image_size=32, patch_size=8, dim=32,
        encoder_width=32, encoder_depth=1, encoder_heads=2,
        decoder_width=32, decoder_depth=1, decoder_heads=2,
        text_width=32, text_layers=1, text_heads=2, text_context_length=16,
        num_blocks=1, head_width=32, head_depth=1,
    ),
    # 128 px, 16 px patches -> 8x8 grid, T = 64 tokens per modality; D = 128; 2 blocks.
    # ICA gate alpha in [0.25, 0.5]: trained with alpha free in (0, 0.5) these shallow flows learned
    # to mix 4-9 % of each token, some layers under 1 %; the floor raised the average to about 10 %
    # for 0.5-1.5 points of mIoU, though a layer can still keep its tokens by learning S_ii -> 1
    # (docs/ica-form.md). Only for shallow
    # flows: each layer's inverse may amplify errors by up to 1 / (1 - 2 alpha), and at 12 blocks
    # a floor of 0.25 loses the float32 round trip (tests/flow/test_flow.py).
    "demo": dict(
        gate_range=(0.25, 0.5), gate_init=0.35,
        image_size=128, patch_size=16, dim=128,
        encoder_width=128, encoder_depth=4, encoder_heads=4,
        decoder_width=128, decoder_depth=1, decoder_heads=4,
        text_width=128, text_layers=2, text_heads=4, text_context_length=64,
        num_blocks=2, head_width=128, head_depth=1,
    ),
    # 256 px, 16 px patches -> 16x16 grid, T = 256; ViT-S/16-sized encoders; D = 384; L = 12.
    "paper": dict(
        image_size=256, patch_size=16, dim=384,
        encoder_width=384, encoder_depth=12, encoder_heads=6,
        decoder_width=256, decoder_depth=2, decoder_heads=8,
        text_width=512, text_layers=12, text_heads=8, text_context_length=77,
        num_blocks=12, head_width=256, head_depth=2,
        # the published architecture has no value affine; at D = 384 over 96 ICA layers it would
        # add 42M parameters to the paper's 72.9M
        value_affine=False,
    ),
}

# Per (preset, task) adjustments. With EfficientNet's 112 stride-16 channels, D = 96 keeps the
# features full-rank (a wider linear projection would put them on a 112-dimensional subspace, where
# a density is degenerate). Genre posters take EfficientNet's 1280 stride-32 channels at 256 px
# (8x8 tokens), as many as the plot's 64 word pieces.
TASK_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("demo", "segmentation"): dict(dim=96),
    ("demo", "translation"): dict(dim=96),
    ("demo", "genre"): dict(image_size=256, patch_size=32),
}
