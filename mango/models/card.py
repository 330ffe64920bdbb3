"""A checkpoint's model card (the README.md of its Hub repo), written from its config alone.

What a reader of a Hub page needs before loading the weights: the task and modalities, how the flow
fuses, what the model was trained and tested on with its test metrics, the pretrained encoders with
their sources and licences (frozen ones install offline from a package and are not in the weights),
and how to load it. Numbers come from ``config.metadata`` as the trainer wrote it (the score on
real photos as ``python -m train.transfer --write-config`` did); nothing is measured here. The lines
that put the metadata in words (`data_line`, `metrics_line`, `real_images_line`) are the app's model
card's too.
"""

from __future__ import annotations

import re
from typing import Any

from mango.data import LAYOUT_NAMES

from .config import MangoConfig
from .weights import PRETRAINED


def model_card(config: MangoConfig, repo_id: str = "OWNER/NAME") -> str:
    meta = config.metadata or {}
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    lines = [
        "---",
        "tags:",
        *(f"- {tag}" for tag in ("mango", "normalizing-flow", "multimodal", config.task)),
        "---",
        "",
        f"# MANGO {config.task} checkpoint",
        "",
        f"Fuses **{config.a.name}** and **{config.b.name}** ({config.image_size} px) with a normalizing flow of "
        "invertible cross-attention layers (MANGO, NeurIPS 2025): an exact likelihood, an exact inverse, and "
        "attention that can be read.",
        "",
        f"- **Fusion:** {_fusion(config)}",
        f"- **Trained on:** {data_line(data) if data else 'not recorded'}",
    ]
    metrics = metrics_line(meta["test_metrics"]) if isinstance(meta.get("test_metrics"), dict) else ""
    if metrics:
        lines.append(f"- **Test metrics** ({data.get('test_split', 'test')} split): {metrics}")
    real = real_images_line(meta)
    if real:
        lines.append(f"- **On real images:** {real}")
    readout = flow_readout(meta)
    if readout:
        lines.append("- **The flow on 32 validation inputs:** " + " · ".join(_measured(k, v) for k, v in readout.items()))
    lines += ["", "## Encoders and licences", ""]
    for key in ("a", "b"):
        modality = config.modality(key)
        spec = PRETRAINED.get(modality.encoder)
        if spec is None:
            lines.append(f"- {modality.name}: {modality.encoder}, trained from scratch (its weights are in this "
                         "checkpoint).")
        else:
            frozen = config.finetune_pretrained
            where = ("fine-tuned, its weights are in this checkpoint" if frozen else
                     f"frozen, not stored here: {spec.ways()}")
            lines.append(f"- {modality.name}: {spec.description} ({spec.hub_id}, licence {spec.licence}); {where}.")
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    if source.get("description"):
        lines += ["", f"The training data: {source['description']}"]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from mango.models import MangoModel",
        "",
        f'model = MangoModel.from_pretrained("{repo_id}", expected_task="{config.task}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def _fusion(config: MangoConfig) -> str:
    if not config.has_flow:
        return f"{config.fusion} (no flow)"
    parts = f"{config.num_blocks} blocks of {' + '.join(p.upper() for p in config.partitions)}"
    return f"{config.flow} flow, {parts}, ICA form {config.ica_form}"


# ------------------------------------------------------------- metadata in words (also the app's model card)
def data_line(value: Any) -> str:
    """The trainer's data description (mango train/data.py) in one line; anything else as given."""
    if not isinstance(value, dict):
        return plain(value)
    name = dataset_name(value)
    parts = [name]
    counts = [f"{value[k]:,} {k.split('_')[0]}" for k in ("train_samples", "val_samples", "test_samples")
              if isinstance(value.get(k), int)]
    if value.get("fit_on") == "train+val" and len(counts) == 3:  # the validation samples are inside train
        counts = [f"{value['train_samples']:,} train (its {value['val_samples']:,} validation included)", counts[2]]
    if counts:
        parts.append(" / ".join(counts) + " samples")
    if value.get("limit"):
        parts.append(f"only the first {value['limit']:,} of each split (a smoke run)")
    if value.get("image_size"):
        parts.append(f"{value['image_size']} px")
    if value.get("inputs"):
        parts.append(f"{' + '.join(value['inputs'])} → {value.get('target', '?')}")
    return " · ".join(p for p in parts if p)


_PATH = re.compile(r"(?:\.{0,2}/|~/|[A-Za-z]:\\)?[\w.\-]+(?:[/\\][\w.\-]+)+[/\\]?")


def dataset_name(value: dict[str, Any]) -> str:
    """The data set's name as a reader knows it; a development folder path is never shown.
    Checkpoints trained since the trainer names its data carry `name`; older ones only `root`."""
    named = value.get("description") or value.get("name")
    if named:
        return str(named)
    root = str(value.get("root") or "")
    layout = LAYOUT_NAMES.get(str(value.get("dataset", "")).lower(), str(value.get("dataset") or ""))
    if root and not _PATH.search(root):
        return root  # a hand-written name, e.g. "SynthRooms (nyudv2 layout)"
    detail = _PATH.sub("", root).strip(" ()")
    return f"{layout} ({detail})" if layout and detail else layout or detail



# The flow's readout on 32 validation inputs (`train.trainer`): metadata["mixing"] holds it. The first
# checkpoints, the bundled ones included, kept it among their test metrics, where it is not one.
FLOW_READOUT = ("off_diagonal_share", "roundtrip_error")
COUNTS = ("samples", "step")  # how many, not how well: the "Trained on" line gives the split sizes


def flow_readout(metadata: dict[str, Any]) -> dict[str, float]:
    """How much the ICA layers mix and how exact the inverse is, on validation inputs (empty if unrecorded)."""
    found = {}
    for source in (metadata.get("test_metrics"), metadata.get("mixing")):  # the newer place wins
        if isinstance(source, dict):
            found.update({k: source[k] for k in FLOW_READOUT if isinstance(source.get(k), (int, float))})
    return found


def transfer_line(metadata: dict[str, Any]) -> str:
    """A segmentation model trained on rendered rooms, scored on real photos (``python -m train.transfer
    --write-config``): what a user uploading a photo can expect, beside the test score on rendered rooms.
    Empty when unmeasured."""
    transfer = metadata.get("transfer")
    if not isinstance(transfer, dict) or not all(isinstance(transfer.get(k), (int, float))
                                                 for k in ("images", "pixel_acc", "miou")):
        return ""
    shared = transfer.get("shared_classes") or []
    over = f"over the {len(shared)} classes both label sets have" if shared else "over the classes both label sets have"
    test = metadata.get("test_metrics") if isinstance(metadata.get("test_metrics"), dict) else {}
    versus = f" (mIoU {test['miou']:.3g} on its own test split)" if isinstance(test.get("miou"), float) else ""
    return (f"pixel accuracy {transfer['pixel_acc']:.3g} and mIoU {transfer['miou']:.3g} on {transfer['images']} "
            f"labelled {transfer.get('data', 'real')} photos, {over}{versus}")


def real_images_line(metadata: dict[str, Any]) -> str:
    """The score on real images when measured (`transfer_line`); for a model trained and tested on
    SynthRooms alone, that it was not: its test score says nothing yet about a photo. Empty otherwise."""
    measured = transfer_line(metadata)
    if measured:
        return measured
    data = metadata.get("data") if isinstance(metadata.get("data"), dict) else {}
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    if source.get("generator") == "mango.data.synthrooms":
        return "not measured: trained and tested on SynthRooms' rendered rooms only"
    return ""


def metrics_line(value: Any) -> str:
    """Scalar test metrics only (per-class lists and the validation readout are left out), 3 significant digits."""
    if not isinstance(value, dict):
        return plain(value)
    shown = [_measured(k, v) for k, v in value.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in (*FLOW_READOUT, *COUNTS)]
    return " · ".join(shown[:8])


def _measured(key: str, value: float) -> str:
    """"mean acc 0.883": a measurement in words, a float to 3 significant digits."""
    return f"{key.replace('_', ' ')} {value:.3g}" if isinstance(value, float) else f"{key.replace('_', ' ')} {value}"


def plain(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if isinstance(v, float):
                v = f"{v:.3g}"
            elif isinstance(v, dict):
                v = plain(v)
            parts.append(f"{k} {v}")
        return " · ".join(parts)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
