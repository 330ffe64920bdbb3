"""The latent model (SPEC 5, 6, 8): per-modality encoders, the flow, task heads, checkpoints.

    config = MangoConfig.preset("demo", "segmentation")
    model = MangoModel(config)
    out = model(rgb, depth)            # MangoOutput: output, z, log_prob, bits_per_dim, features
    model.save_pretrained("ckpt/")     # config.json + model.safetensors
    model = MangoModel.from_pretrained("ckpt/", expected_task="segmentation")

Import graph (acyclic): model -> {checkpoint, config, fusion, heads, image, text};
checkpoint -> {config, hub}; image/text -> backbones -> weights -> hub -> errors.
"""

from .config import (
    FORMAT_VERSION,
    MMIMDB_GENRES,
    NYUDV2_CLASSES,
    ConfigError,
    ConfigVersionError,
    MangoConfig,
    ModalityConfig,
)
from .fusion import FusionPlan, fusion_plan
from .heads import GenreHead, SegmentationHead, TranslationHead, build_head
from .errors import (
    CheckpointError,
    CheckpointNotFoundError,
    HubOfflineError,
    TaskMismatchError,
    WeightsNotFoundError,
)
from .hub import hub_cache_dir, hub_offline_switch, hub_reachable
from .image import ConvImageDecoder, ImageDecoder, ImageEncoder, PretrainedImageEncoder, patchify, unpatchify
from .model import MangoModel, MangoOutput, build_encoder, build_flow, gaussian_log_prob
from .text import PretrainedTextEncoder, TextCutWarning, TextEncoder
from .weights import PRETRAINED, PretrainedWeights

__all__ = [
    "FORMAT_VERSION",
    "MMIMDB_GENRES",
    "NYUDV2_CLASSES",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "ConfigVersionError",
    "ConvImageDecoder",
    "FusionPlan",
    "GenreHead",
    "HubOfflineError",
    "ImageDecoder",
    "ImageEncoder",
    "MangoConfig",
    "MangoModel",
    "MangoOutput",
    "ModalityConfig",
    "PRETRAINED",
    "PretrainedImageEncoder",
    "PretrainedTextEncoder",
    "PretrainedWeights",
    "SegmentationHead",
    "TaskMismatchError",
    "TextCutWarning",
    "TextEncoder",
    "TranslationHead",
    "WeightsNotFoundError",
    "build_encoder",
    "build_flow",
    "build_head",
    "fusion_plan",
    "gaussian_log_prob",
    "hub_cache_dir",
    "hub_offline_switch",
    "hub_reachable",
    "patchify",
    "unpatchify",
]
