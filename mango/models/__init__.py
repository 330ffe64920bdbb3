"""The latent model (SPEC 5, 6, 8): per-modality encoders, the flow, task heads, checkpoints.

    config = MangoConfig.preset("demo", "segmentation")
    model = MangoModel(config)
    out = model(rgb, depth)            # MangoOutput: output, z, log_prob, bits_per_dim, features
    model.save_pretrained("ckpt/")     # config.json + model.safetensors
    model = MangoModel.from_pretrained("ckpt/", expected_task="segmentation")
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
from .hub import (
    CheckpointError,
    CheckpointNotFoundError,
    HubOfflineError,
    TaskMismatchError,
    hub_cache_dir,
    hub_offline_switch,
    hub_reachable,
)
from .image import ImageDecoder, ImageEncoder, patchify, unpatchify
from .model import MangoModel, MangoOutput, build_flow, gaussian_log_prob
from .text import TextEncoder

__all__ = [
    "FORMAT_VERSION",
    "MMIMDB_GENRES",
    "NYUDV2_CLASSES",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "ConfigVersionError",
    "FusionPlan",
    "GenreHead",
    "HubOfflineError",
    "ImageDecoder",
    "ImageEncoder",
    "MangoConfig",
    "MangoModel",
    "MangoOutput",
    "ModalityConfig",
    "SegmentationHead",
    "TaskMismatchError",
    "TextEncoder",
    "TranslationHead",
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
