"""Two-stage MANGO training (SPEC 5): autoencoders first, then flow + head on the frozen encoders.

Runs on CPU, on one GPU (bf16 autocast) and on many with ``torchrun`` (DDP; rank 0 alone writes
files). Every evaluation writes a row to ``metrics.csv`` / ``metrics.jsonl`` and a resumable state
to ``last/``; an interrupted run started again with the same ``--out`` continues from there. The
best model on the validation set is kept in ``best/``; at the end it is evaluated once on the test
split and written to ``final/`` with the training config, data description and metrics in its
``config.json``.

Surviving a kill (SIGKILL, a lost node): every file and folder is replaced atomically
(``train/atomic.py``), and the saved state in ``last/`` is the commit point. An evaluation first
stages its new best model (``best.tmp/``), then logs its row, then commits ``last/`` (its
``state.json`` written last), and only then swaps in ``best/``. On a restart, rank 0 settles what
a kill interrupted: a complete staged state is swapped in, a best model is kept only if the saved
state chose it, and log rows after the saved state are dropped, since their steps run again. So
every evaluation is logged exactly once, and ``best/`` (whose ``selection.json`` names its step
and scores) always matches the best scores the state records.

Resuming: the run in ``--out`` continues only with the settings it was started with
(``train_config.json``); a setting that changes what is trained is refused, naming it, before
anything is read or written. ``--out``, ``--num-workers`` and ``--push-to-hub`` may change, and so
may ``--steps``, to extend a run: its cosine schedule then decays over the new total from where it
stands, which is not the run a fresh start with that ``--steps`` makes, so the checkpoint records
the step counts it was extended from. A resumed run draws the batches an uninterrupted one would
(the same order, the batches already trained skipped unread) from the random states saved with it
(one per rank under torchrun), so it ends with the same weights (exactly with ``--num-workers 0``;
with workers the order is the same, the random crops are not).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler
from tqdm.auto import tqdm

from mango.flow.base import evaluating
from mango.hub_env import push_unavailable_reason
from mango.models import MangoConfig, MangoModel
from mango.models.config import ConfigError, ModalityConfig, gray, rgb, task_modalities
from mango.models.errors import CheckpointError
from mango.models.card import FLOW_READOUT
from mango.models.heads import mean_over_positions

from .atomic import atomic_write_text, remove_part_file, replace_dir, settle_staged_dir, staging_dir
from .data import PHOTOMETRIC_DATASETS, TASK_OF_DATASET, Splits, build_splits
from .evaluate import SELECTION_METRIC, evaluate, tune_thresholds
from .features import BackboneCache
from .metrics_log import MetricsLog
from .text_projection import label_axes, principal_axes

CHANNELS = {"rgb": 3, "normal": 3, "depth_zbuffer": 1, "reshading": 1, "edge_texture": 1}
STAGE_ORDER = {"autoencoder": 0, "task": 1, "done": 2}
SELECTION_FILE = "selection.json"  # in best/: the step and validation scores that made it the best
# TrainConfig fields that do not change what a run trains: a resumed run may give them anew
# (`steps` may change too, to extend a run: see the module docstring)
RESUME_MAY_CHANGE = ("out", "num_workers", "push_to_hub")


class PushError(CheckpointError):
    """A finished run's push to the Hub failed; the checkpoint is saved."""


class SettingsError(ValueError):
    """Settings a run cannot train with (or resume with): refused before any data is read."""


@dataclass
class TrainConfig:
    """Everything a run needs; written into the checkpoint so a result says how it was made."""

    dataset: str
    root: str
    out: str
    preset: str = "demo"
    task: str | None = None  # derived from the dataset when None
    inputs: tuple[str, str] = ("reshading", "edge_texture")  # Taskonomy input domains
    target: str = "rgb"  # Taskonomy target domain
    image_size: int | None = None  # preset's when None
    batch_size: int = 16
    ae_steps: int = 500  # stage 1: autoencoders (skipped when the model has no image modality)
    steps: int = 1000  # stage 2: flow + head
    lr: float = 1e-3
    ae_lr: float = 1e-3
    flow_lr_scale: float = 1.0  # stage 2: the flow learns at lr x this (the head and projections at lr)
    weight_decay: float = 0.01
    warmup: int = 50
    nll_weight: float | None = None  # the preset's lambda when None
    eval_every: int = 200
    val_fraction: float = 0.1
    seed: int = 0
    num_workers: int = 2
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    bf16: bool = True  # autocast on CUDA; ignored on CPU
    encoders_from: str | None = None  # reuse stage-1 weights from a checkpoint (skips stage 1)
    cache_backbones: bool = True  # stage 2 on frozen backbones: compute their outputs once (train/features.py)
    mirror: bool = True  # the cache also holds each training sample mirrored left-right
    photometric: bool = False  # jitter the training colour images (RGB-D segmentation); no stage-2 cache then
    balance_classes: str = "none"  # "sqrt" or "inverse" frequency weights from the training labels (see class_weights)
    thresholds: str = "per_class"  # genre decision thresholds tuned on validation: "per_class", "global" or "none" (0.5)
    text_projection: str = "random"  # or "pca" / "labels": where a frozen text encoder's projection starts
    ema_decay: float = 0.0  # > 0: stage 2 selects, keeps and ships a moving average of the weights
    fit_on: str = "train"  # or "train+val": validation is trained on too, and the last step ships (no selection)
    limit: int | None = None  # read only the first N samples of each split (a smoke run; its scores mean nothing)
    overrides: dict[str, Any] = field(default_factory=dict)  # any MangoConfig field
    push_to_hub: str | None = None

    def __post_init__(self) -> None:
        self.task = self.task or TASK_OF_DATASET[self.dataset]
        self.inputs = tuple(self.inputs)
        if "image_size" in self.overrides:  # the data is read at image_size: one setting for both
            size = self.overrides["image_size"]
            if self.image_size is not None and self.image_size != size:
                raise SettingsError(f"image_size is given twice, {self.image_size} (--image-size) and {size} "
                                    "(--set image_size): give --image-size only")
            self.image_size = size
            self.overrides = {k: v for k, v in self.overrides.items() if k != "image_size"}


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A TrainConfig as JSON, in the form two of them compare in: paths that exist resolved, and
    stage-1 steps 0 when the encoders come from a checkpoint (stage 1 does not run then)."""
    values = json.loads(json.dumps(values, default=str))
    for key in ("root", "encoders_from"):
        if isinstance(values.get(key), str) and os.path.exists(values[key]):
            values[key] = os.path.realpath(values[key])
    if values.get("encoders_from"):
        values["ae_steps"] = 0
    return values


def config_differences(saved: dict[str, Any], cfg: TrainConfig,
                       ignore: tuple[str, ...] = RESUME_MAY_CHANGE) -> dict[str, tuple[Any, Any]]:
    """The fields of `cfg` that differ from `saved` (a run's train_config.json), as (saved, now);
    a field `saved` lacks (written before the field existed) counts at its default."""
    defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                for f in dataclasses.fields(TrainConfig)}
    now = _comparable(dataclasses.asdict(cfg))
    before = _comparable({k: saved.get(k, defaults[k]) for k in now})
    return {k: (before[k], now[k]) for k in now if k not in ignore and before[k] != now[k]}


def describe_differences(differences: dict[str, tuple[Any, Any]]) -> str:
    """`lr: 0.001 there, 0.01 now; seed: 0 there, 1 now`."""
    return "; ".join(f"{k}: {json.dumps(old)} there, {json.dumps(new)} now" for k, (old, new) in differences.items())


# -- distributed helpers ----------------------------------------------------------------------------


def _dist_setup(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cfg.device.startswith("cuda"):
            torch.cuda.set_device(local)
            return dist.get_rank(), world, torch.device("cuda", local)
        return dist.get_rank(), world, torch.device(cfg.device)
    return 0, 1, torch.device(cfg.device)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _LossModule(nn.Module):
    """DDP synchronises gradients through ``forward``: route the chosen loss through it."""

    def __init__(self, model: MangoModel, stage: str):
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.autoencoder_loss(batch) if self.stage == "autoencoder" else self.model.loss(batch)


class _SkippingBatchSampler(BatchSampler):
    """Full batches of `sampler`, the first `skip` of them (over all epochs) drawn and dropped
    without reading their samples: a resumed run continues the order of an uninterrupted one."""

    def __init__(self, sampler: Sampler, batch_size: int, skip: int):
        super().__init__(sampler, batch_size, drop_last=True)
        self.skip = skip

    def __iter__(self) -> Iterator[list[int]]:
        for batch in super().__iter__():
            if self.skip > 0:
                self.skip -= 1
                continue
            yield batch


def _batches(loader: DataLoader, sampler: DistributedSampler | None) -> Iterator[dict]:
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _modality(name: str, encoder: str = "") -> ModalityConfig:
    """A Taskonomy domain as a modality: its channels and normalisation, with the given encoder."""
    if name not in CHANNELS:
        raise ValueError(f"no modality settings for Taskonomy domain {name!r}; known: {sorted(CHANNELS)}")
    if name == "rgb":
        return rgb(name, encoder)
    return ModalityConfig(name, "image", 3, encoder=encoder) if CHANNELS[name] == 3 else gray(name, encoder)


def _encoder(override: Any, default: ModalityConfig) -> str:
    """The encoder a `--set a=...` override asks for, else the task default's."""
    if isinstance(override, dict):
        return str(override.get("encoder", default.encoder))
    if isinstance(override, ModalityConfig):
        return override.encoder
    return default.encoder


def build_model_config(cfg: TrainConfig, splits: Splits) -> MangoConfig:
    values: dict[str, Any] = dict(cfg.overrides)
    if cfg.image_size is not None:
        values["image_size"] = cfg.image_size
    if cfg.nll_weight is not None:
        values["nll_weight"] = cfg.nll_weight
    if cfg.task == "translation":  # the domains decide channels and scales; an override may pick the encoders
        defaults = task_modalities("translation", cfg.preset)
        values.update(a=_modality(cfg.inputs[0], _encoder(values.get("a"), defaults["a"])),
                      b=_modality(cfg.inputs[1], _encoder(values.get("b"), defaults["b"])),
                      target=_modality(cfg.target))
    if splits.class_names and cfg.task != "translation":
        values["class_names"] = splits.class_names
    return MangoConfig.preset(cfg.preset, task=cfg.task, **values)


# -- the run ----------------------------------------------------------------------------------------


def build_run_splits(cfg: TrainConfig) -> Splits:
    """The data splits a run of `cfg` trains, selects and tests on."""
    image_size = cfg.image_size or MangoConfig.preset(cfg.preset, task=cfg.task).image_size
    return build_splits(cfg.dataset, cfg.root, image_size, inputs=cfg.inputs, target=cfg.target,
                        val_fraction=cfg.val_fraction, seed=cfg.seed, fit_on=cfg.fit_on, photometric=cfg.photometric,
                        limit=cfg.limit)


class Trainer:
    """One training run. ``caches`` lets runs that share their stage-1 encoders (the ablation
    variants of one seed) share the backbone caches too: the dict is filled by the first run.
    ``splits`` replaces the data splits `cfg` names (train.crossval trains on all folds but one)."""

    def __init__(self, cfg: TrainConfig, caches: dict[str, BackboneCache] | None = None,
                 splits: Splits | None = None):
        check_settings(cfg)  # before any data is read, not after stage 1
        self.cfg = cfg
        self.out = Path(cfg.out)
        self._check_resume()
        self.rank, self.world, self.device = _dist_setup(cfg)
        self.main = self.rank == 0
        self.log = MetricsLog(self.out)
        _seed_everything(cfg.seed + self.rank)
        self.splits = splits if splits is not None else build_run_splits(cfg)
        per_process = math.ceil(len(self.splits.train) / self.world)  # what DistributedSampler gives each rank
        if cfg.batch_size > per_process:  # before any stage or cache is computed, whichever path stage 2 takes
            raise SettingsError(f"batch_size {cfg.batch_size} is larger than the {per_process} training samples"
                                f"{' per process' if self.world > 1 else ''}: give a smaller --batch-size")
        self.model_config = build_model_config(cfg, self.splits)
        if cfg.balance_classes != "none" and not self.model_config.class_weights:
            self.model_config.class_weights = class_weights(self.splits.train, self.model_config, cfg.balance_classes)
        self.model = MangoModel(self.model_config).to(self.device)
        if cfg.steps == 0 and not (self.model.decoders and cfg.ae_steps > 0):
            raise SettingsError(f"steps=0 and this model has no stage 1 to train (ae_steps={cfg.ae_steps}, "
                                f"{len(self.model.decoders)} autoencoders): nothing to train; give --steps > 0")
        if cfg.encoders_from:
            self._load_encoders(cfg.encoders_from)
        self.state: dict[str, Any] = {"stage": "autoencoder", "step": 0, "best": None, "elapsed_s": 0.0}
        if not self.model.decoders or cfg.ae_steps <= 0 or cfg.encoders_from:
            self.state["stage"] = "task"
        self.autocast = self.device.type == "cuda" and cfg.bf16
        self.cache: dict[str, BackboneCache] = caches if caches is not None else {}
        self.ema: ModelEmaV3 | None = None  # stage 2's moving average, when cfg.ema_decay > 0

    def _saved_state(self) -> dict[str, Any] | None:
        """The state a restart resumes from: a complete staged last.tmp/ (swapped in first) or last/."""
        for folder in ("last.tmp", "last"):
            path = self.out / folder / "state.json"
            if path.is_file():
                return json.loads(path.read_text())
        return None

    def _check_resume(self) -> None:
        """Refuse to continue the run in `out` with settings that change what it trains (its
        train_config.json says how it started): a mixed run would be recorded as a recipe that
        never ran. Only `steps` and RESUME_MAY_CHANGE may differ."""
        state, path = self._saved_state(), self.out / "train_config.json"
        if state is None or not path.is_file():
            return  # nothing to resume: a fresh start
        saved = json.loads(path.read_text())
        differences = config_differences(saved, self.cfg, RESUME_MAY_CHANGE + ("steps",))
        if differences:
            raise SettingsError(f"{self.out} holds a run started with other settings ({describe_differences(differences)}): "
                                f"resume it with the settings in {path}, or give this run another --out")
        if state["stage"] == "task" and state["step"] > self.cfg.steps:
            raise SettingsError(f"{self.out} has trained {state['step']} stage-2 steps already, more than steps="
                                f"{self.cfg.steps}: resume with steps >= {state['step']}, or give this run another --out")
        self._resumed_steps = saved.get("steps", self.cfg.steps)

    def _selected(self) -> MangoModel:
        """The weights validation scores, best/ keeps and the run ships: the moving average when
        there is one, else the trained weights themselves."""
        return self.ema.module if self.ema is not None else self.model

    # -- parameters and optimiser per stage --
    def _parameters(self, stage: str) -> list[nn.Parameter]:
        if stage == "autoencoder":
            modules = [self.model.encoders[k] for k in self.model.decoders] + list(self.model.decoders.values())
            return [p for m in modules for p in m.parameters()]
        frozen = set()
        for key, encoder in self.model.encoders.items():
            text = self.model.config.modality(key).is_text
            tuned = self.model_config.finetune_text_encoder if text else self.model_config.finetune_image_encoders
            if not tuned:
                frozen |= {id(p) for p in encoder.parameters()}
        frozen |= {id(p) for p in self.model.decoders.parameters()}
        return [p for p in self.model.parameters() if id(p) not in frozen]

    def _parameter_groups(self, stage: str) -> list[dict[str, Any]]:
        """AdamW groups: in stage 2 the flow's own, at lr x flow_lr_scale, so the flow can move slower
        than the head (it fits the few genre films otherwise); one group at the stage's lr else."""
        params = self._parameters(stage)
        if stage == "autoencoder" or self.cfg.flow_lr_scale == 1.0:  # one group: runs saved before resume
            return [{"params": params, "lr": self.cfg.ae_lr if stage == "autoencoder" else self.cfg.lr}]
        flow = {id(p) for p in self.model.flow.parameters()} if self.model.flow is not None else set()
        groups = [{"params": [p for p in params if id(p) in flow], "lr": self.cfg.lr * self.cfg.flow_lr_scale},
                  {"params": [p for p in params if id(p) not in flow], "lr": self.cfg.lr}]
        return [g for g in groups if g["params"]]

    def _optimizer(self, stage: str) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        total = self.cfg.ae_steps if stage == "autoencoder" else self.cfg.steps
        opt = torch.optim.AdamW(self._parameter_groups(stage), weight_decay=self.cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, total, self.cfg.warmup))
        return opt, sched

    def _load_encoders(self, path: str) -> None:
        source = MangoModel.from_pretrained(path, expected_task=self.cfg.task)
        mine, theirs = self.model_config, source.config
        differences = {k: (getattr(theirs, k), getattr(mine, k)) for k in ("image_size", "patch_size")
                       if getattr(theirs, k) != getattr(mine, k)}
        for key in self.model.encoders:
            if self.model_config.modality(key).is_text or key not in source.encoders:
                continue
            a, b = theirs.modality(key), mine.modality(key)
            differences.update({f"{key}.{f}": (getattr(a, f), getattr(b, f)) for f in ("name", "channels", "encoder")
                                if getattr(a, f) != getattr(b, f)})
        if differences:
            raise SettingsError(f"--encoders-from {path}: its encoders were trained for other inputs ("
                                + "; ".join(f"{k}: {v[0]!r} there, {v[1]!r} here" for k, v in differences.items())
                                + "): train this run's own stage 1 (no --encoders-from), or pick a checkpoint made "
                                "with these inputs and sizes")
        for part in ("encoders", "decoders"):
            own, theirs = getattr(self.model, part), getattr(source, part)
            for key in own:
                if key in theirs and not self.model_config.modality(key).is_text:
                    own[key].load_state_dict(theirs[key].state_dict())

    # -- checkpoints --
    def _rng_states(self) -> list[torch.Tensor]:
        """Each rank's torch generator state, by rank: ranks draw different crops and noise (seeded
        seed + rank), and a resumed run must give each its own stream back, not rank 0's."""
        state = torch.get_rng_state()
        if self.world == 1:
            return [state]
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, state)
        return [s.cpu() for s in states]

    def _restore_rng(self, saved: dict[str, Any]) -> None:
        """This rank's generator state from a saved trainer state (see `_rng_states`)."""
        by_rank = saved.get("torch_rng_by_rank")
        if by_rank is not None and len(by_rank) == self.world:
            torch.set_rng_state(by_rank[self.rank].cpu())
        elif self.rank == 0:
            torch.set_rng_state(saved["torch_rng"].cpu())
        else:  # saved by another number of ranks (or before states were kept by rank): a stream of its own
            torch.manual_seed(self.cfg.seed + self.rank + 1_000_003 * self.state["step"])

    def _save_state(self, opt, sched, rng_states: list[torch.Tensor]) -> None:
        """Commit last/: the model as a checkpoint, the optimiser and counters beside it, state.json last."""
        tmp = staging_dir(self.out / "last")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        if self.ema is not None:
            self.ema.module.save_pretrained(tmp / "ema")
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "torch_rng": rng_states[0], "torch_rng_by_rank": rng_states}, tmp / "trainer_state.pt")
        atomic_write_text(tmp / "state.json", json.dumps(self.state, indent=2))  # the commit point
        replace_dir(tmp, self.out / "last")

    def _stage_best(self) -> None:
        """Write the new best model to best.tmp/, with the scores that chose it; swapped in after the commit."""
        tmp = staging_dir(self.out / "best")
        shutil.rmtree(tmp, ignore_errors=True)
        self._selected().save_pretrained(tmp)
        atomic_write_text(tmp / SELECTION_FILE, json.dumps(self.state["best"]))

    def _settle_after_kill(self) -> None:
        """Rank 0, before resuming: finish or undo what a kill interrupted (see the module docstring)."""
        last = self.out / "last"
        settle_staged_dir(last, keep=lambda staged: (staged / "state.json").is_file())
        committed = json.loads((last / "state.json").read_text()) if (last / "state.json").is_file() else None

        def chosen_by_the_saved_state(staged: Path) -> bool:
            selection = staged / SELECTION_FILE
            return committed is not None and selection.is_file() and \
                _same_json(json.loads(selection.read_text()), committed.get("best"))

        settle_staged_dir(self.out / "best", keep=chosen_by_the_saved_state)
        settle_staged_dir(self.out / "final", keep=lambda staged: False)  # the run finishes again anyway
        for name in ("test_metrics.json", "train_config.json"):
            remove_part_file(self.out / name)
        saved = (STAGE_ORDER[committed["stage"]], committed["step"]) if committed else (-1, 0)
        self.log.roll_back(keep=lambda row: (STAGE_ORDER[row["stage"]], row["step"]) <= saved)

    def _try_resume(self) -> dict | None:
        if self.main:
            self._settle_after_kill()
        if self.world > 1:
            dist.barrier()  # the other ranks read last/ only once rank 0 has settled it
        last = self.out / "last"
        if not (last / "state.json").is_file():
            return None
        loaded = MangoModel.from_pretrained(last, expected_task=self.cfg.task)
        self.model.load_state_dict(loaded.state_dict())
        self.state = json.loads((last / "state.json").read_text())
        before = getattr(self, "_resumed_steps", self.cfg.steps)
        if self.state["stage"] == "task" and self.state["step"] > 0 and before != self.cfg.steps:
            self.state["extended_from"] = [*self.state.get("extended_from", []), before]
        if self.main:  # say so: a rerun that only resumed, or only re-scored a finished run, looked like a new one
            stage, step = self.state["stage"], self.state["step"]
            total = self.cfg.steps if stage == "task" else self.cfg.ae_steps
            where = (f"{stage} stage at step {step} of {total}"
                     + (": its training is done, so it is only scored again" if stage == "task" and step >= total
                        else ""))
            tqdm.write(f"Resuming {self.out} from {last} ({where})")
        # weights_only: a plain tensor/number load that never executes code
        return torch.load(last / "trainer_state.pt", map_location=self.device, weights_only=True)

    # -- logging --
    def _log(self, row: dict[str, Any]) -> None:
        if self.main:
            self.log.append(row)

    def _loader(self, skip: int) -> Iterator[dict]:
        """Training batches in a stage's order from its start, the first `skip` (trained before a
        resume) drawn but not read, so the stream goes on as an uninterrupted run's does."""
        generator = torch.Generator().manual_seed(self.cfg.seed)
        sampler = DistributedSampler(self.splits.train, seed=self.cfg.seed) if self.world > 1 else None
        batch_sampler = _SkippingBatchSampler(sampler or RandomSampler(self.splits.train, generator=generator),
                                              self.cfg.batch_size, skip)
        loader = DataLoader(self.splits.train, batch_sampler=batch_sampler, num_workers=self.cfg.num_workers,
                            persistent_workers=self.cfg.num_workers > 0, generator=generator)
        return _batches(loader, sampler)

    # -- stage 2 on cached backbone outputs --
    def _caches(self) -> bool:
        """Build the train/val/test backbone caches once, when stage 2 can use them (not with
        photometric jitter: a cache holds each image's backbone output under one colouring)."""
        if not (self.cfg.cache_backbones and self.model.cacheable_backbones) or self.cfg.photometric:
            return False
        if "train" not in self.cache:
            show = self.main
            self.cache["train"] = BackboneCache(self.model, self.splits.train_eval, mirrored=self.cfg.mirror,
                                                progress=show, split="train")
            self.cache["val"] = BackboneCache(self.model, self.splits.val, progress=show, split="val")
        return True

    def _eval_set(self, split: str) -> Any:
        return self.cache.get(split) or getattr(self.splits, split)

    @torch.no_grad()
    def _initialize_text_projection(self, samples: int = 20000) -> None:
        """Start each frozen pretrained text encoder's projection at its states' principal axes
        (``"pca"``) or at the directions that predict the labels, then principal axes
        (``"labels"``, genre only; train/text_projection.py), instead of a random subspace."""
        mode = self.cfg.text_projection
        if mode == "random":
            return
        if mode not in ("pca", "labels"):
            raise ValueError(f"text_projection must be 'random', 'pca' or 'labels', got {mode!r}")
        if mode == "labels" and self.cfg.task != "genre":
            raise ValueError(f"text_projection='labels' needs multi-label targets (genre), not {self.cfg.task}")
        for key, encoder in self.model.encoders.items():
            if not (self.model.config.modality(key).is_text and getattr(encoder, "frozen_backbone", False)):
                continue
            states, pooled, labels = self._text_states(key, encoder, samples)
            dim = encoder.proj.out_features
            axes = label_axes(pooled, labels, states, dim) if mode == "labels" else principal_axes(states, dim)
            weight = axes.to(encoder.proj.weight)
            encoder.proj.weight.copy_(weight)
            encoder.proj.bias.copy_(-weight @ states.mean(0).to(weight))
            if self.world > 1:
                for tensor in encoder.proj.parameters():
                    dist.broadcast(tensor.data, src=0)

    def _text_states(self, key: str, encoder: nn.Module, samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Up to `samples` non-pad token states of the training texts, and every training
        example's mean non-pad state with its target; float32 on the CPU."""
        if self._caches():
            outputs = ((batch["backbone"][key], batch["target"])
                       for batch in self.cache["train"].in_order(64, self.device))
        else:
            loader = DataLoader(self.splits.train_eval, batch_size=32, shuffle=False, num_workers=0)
            outputs = ((encoder.backbone_features(batch[key]), batch["target"]) for batch in loader)
        rows, pooled, targets = [], [], []
        for (states, ids), target in outputs:
            pad = ids == encoder.pad_id
            rows.append(states[~pad].float().cpu())
            pooled.append(mean_over_positions(states.float(), pad).cpu())
            targets.append(target.float().cpu())
        return torch.cat(rows)[:samples], torch.cat(pooled), torch.cat(targets)

    @torch.no_grad()
    def _initialize_whitening(self, samples: int = 2000) -> None:
        """Fit the flow's whitening layer to training features before stage 2 (once: a resumed run
        has it in its checkpoint), so the flow starts at their full-covariance Gaussian density."""
        flow = self.model.flow
        if flow is None or getattr(flow, "whitening", None) is None or bool(flow.whitening.initialized):
            return
        was_training = self.model.training
        self.model.eval()
        if self._caches():
            batches = (self.model.features_from_backbone(batch["backbone"])[0]
                       for batch in self.cache["train"].in_order(64, self.device))
        else:
            batches = (self.model.encode(batch["a"].to(self.device), _device(batch["b"], self.device))
                       for batch in DataLoader(self.splits.train_eval, batch_size=32, shuffle=False, num_workers=0))
        parts, seen = [], 0
        for features in batches:
            parts.append(features.float().cpu())
            seen += len(parts[-1])
            if seen >= samples:
                break
        flow.initialize_whitening(torch.cat(parts)[:samples].to(self.device))
        if self.world > 1:  # every rank starts from rank 0's fit
            for tensor in flow.whitening.parameters():
                dist.broadcast(tensor.data, src=0)
        self.model.train(was_training)

    def _start_ema(self, resuming: bool) -> None:
        """Stage 2's moving average of the weights (timm's ModelEmaV3; with warm-up, step s averages
        at decay min(1 - 1/s, cfg.ema_decay), so the early weights fade out). A resumed run takes
        the average it had saved in last/ema/."""
        if self.cfg.ema_decay <= 0:
            return
        self.ema = ModelEmaV3(self.model, decay=self.cfg.ema_decay, use_warmup=True, warmup_power=1.0)
        saved = self.out / "last" / "ema"
        if resuming and saved.is_dir():
            self.ema.module.load_state_dict(MangoModel.from_pretrained(saved, device=self.device).state_dict())

    # -- stages --
    def _run_stage(self, stage: str, resume: dict | None) -> None:
        total = self.cfg.ae_steps if stage == "autoencoder" else self.cfg.steps
        if stage == "task" and resume is None:
            self._initialize_text_projection()
            self._initialize_whitening()
        opt, sched = self._optimizer(stage)
        if stage == "task":
            self._start_ema(resume is not None)
        if resume is not None:
            opt.load_state_dict(resume["optimizer"])
            sched.load_state_dict(resume["scheduler"])
        loss_module = _LossModule(self.model, stage)
        runner: nn.Module = loss_module
        if self.world > 1:
            runner = nn.parallel.DistributedDataParallel(
                loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        # the stage's batch order from its start, the batches trained before a resume skipped
        if stage == "task" and self._caches():
            generator = torch.Generator().manual_seed(self.cfg.seed + self.rank)
            batches = self.cache["train"].batches(self.cfg.batch_size, generator, self.device, skip=self.state["step"])
        else:
            batches = self._loader(self.state["step"])
        if resume is not None:  # after building the caches, whose loaders draw from this generator
            self._restore_rng(resume)
        self.model.train()
        start = time.time()
        running: dict[str, float] = dict(self.state.get("running") or {}) if resume is not None else {}
        bar = tqdm(total=total, initial=self.state["step"], desc=stage, disable=not self.main, dynamic_ncols=True)
        while self.state["step"] < total:
            batch = next(batches)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                loss, logs = runner(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            self.state["step"] += 1
            if self.ema is not None:
                self.ema.update(self.model, step=self.state["step"])
            for k, v in logs.items():
                running[k] = 0.9 * running.get(k, v) + 0.1 * v
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("loss", "bits_per_dim", "task_loss")})
            step = self.state["step"]
            if step % self.cfg.eval_every == 0 or step == total:
                self.state["elapsed_s"] += time.time() - start
                self.state["running"] = running
                start = time.time()
                self._evaluate_and_checkpoint(stage, running, opt, sched)
                self.model.train()
        bar.close()

    def _evaluate_and_checkpoint(self, stage: str, running: dict, opt, sched) -> None:
        row: dict[str, Any] = {"stage": stage, "step": self.state["step"], "elapsed_s": round(self.state["elapsed_s"], 1),
                               **{f"train_{k}": round(v, 5) for k, v in running.items()}}
        new_best = False
        if stage == "task" and self.main:
            val = evaluate(self._selected(), self._eval_set("val"), self.cfg.batch_size)
            row.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, list)})
            name, sign = SELECTION_METRIC[self.cfg.task]
            held_out = self.cfg.fit_on == "train"  # else validation is trained on: the latest evaluation ships
            if not held_out or self.state["best"] is None or sign * val[name] > sign * self.state["best"][name]:
                self.state["best"] = {"step": self.state["step"], **{k: v for k, v in val.items() if not isinstance(v, list)}}
                self._stage_best()
                new_best = True
        if stage == "task" and self.model.flow is not None:
            row.update(self._flow_readout(self._selected()))
        self._log(row)
        rng_states = self._rng_states()  # every rank takes part, before rank 0 writes
        if self.main:
            self._save_state(opt, sched, rng_states)
            if new_best:
                replace_dir(staging_dir(self.out / "best"), self.out / "best")

    @torch.no_grad()
    def _flow_readout(self, model: MangoModel, samples: int = 16) -> dict[str, float]:
        """Round trip, smallest A_ii, and how much each ICA layer mixes (off-diagonal share, gate),
        on validation features: a layer that stays the identity shows here, step by step."""
        n = min(samples, len(self.splits.val))
        with evaluating(model):  # the flow's own readouts below run in eval mode too
            if self.cache:
                batch = self.cache["val"].batch(torch.arange(n), self.device)
                feats, _ = model.features_from_backbone(batch["backbone"])
            else:
                batch = next(iter(DataLoader(self.splits.val, batch_size=n)))
                feats = model.encode(batch["a"].to(self.device), _device(batch["b"], self.device))
        row: dict[str, float] = {"roundtrip_error": model.flow.roundtrip_error(feats)}
        report = model.flow.mixing_report(feats)
        row["min_attention_diagonal"] = min((r["min_diagonal"] for r in report), default=float("nan"))
        if report:
            row["off_diagonal_share"] = float(np.mean([r["off_diagonal_share"] for r in report]))
            for r in report:
                tag = f"b{r['block'] + 1}_l{r['layer'] + 1}"
                row[f"share_{tag}"] = round(r["off_diagonal_share"], 5)
                if not math.isnan(r["gate"]):
                    row[f"gate_{tag}"] = round(r["gate"], 5)
        return row

    def run(self) -> dict[str, Any]:
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        resume = self._try_resume()  # its settings were checked in __init__: now they are this run's
        if self.main:
            atomic_write_text(self.out / "train_config.json", json.dumps(dataclasses.asdict(self.cfg), indent=2))
        if self.state["stage"] == "autoencoder":
            self._run_stage("autoencoder", resume)
            self.state.update(stage="task", step=0)
            resume = None
        if self.state["stage"] == "task":
            self._run_stage("task", resume)
            self.state["stage"] = "done"
        result = self._finish() if self.main else {}
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return result

    def _finish(self) -> dict[str, Any]:
        best_dir = self.out / "best"
        model = MangoModel.from_pretrained(best_dir if best_dir.is_dir() else self.out / "last", device=self.device)
        if model.config.task == "genre" and self.cfg.thresholds != "none":  # chosen on the validation split only
            model.config.decision_thresholds = tune_thresholds(model, self._eval_set("val"), self.cfg.batch_size,
                                                               per_class=self.cfg.thresholds == "per_class")
        # the test split through the whole model, not the float16 feature cache: the number written
        # here is the one `python -m train.evaluate` reproduces
        test = evaluate(model, self.splits.test, batch_size=self.cfg.batch_size, num_workers=self.cfg.num_workers,
                        progress=True)
        self.model = model
        if model.flow is not None:
            readout = self._flow_readout(model, samples=32)  # validation inputs: not a test metric
            model.config.metadata["mixing"] = {k: v for k, v in readout.items()
                                               if k.startswith(("share_", "gate_")) or k in FLOW_READOUT}
        model.config.metadata.update(
            training=_recorded_settings(self.cfg, self.device) | {"elapsed_s": round(self.state["elapsed_s"], 1),
                                                     "device": str(self.device), "world_size": self.world}
            | ({"extended_from_steps": self.state["extended_from"]} if self.state.get("extended_from") else {}),
            data=self.splits.description,
            validation_metrics=self.state["best"],
            test_metrics=test,
        )
        final = staging_dir(self.out / "final")
        shutil.rmtree(final, ignore_errors=True)
        model.save_pretrained(final)
        replace_dir(final, self.out / "final")
        atomic_write_text(self.out / "test_metrics.json", json.dumps(test, indent=2))
        if self.cfg.push_to_hub:
            try:
                model.push_to_hub(self.cfg.push_to_hub)
            except Exception as err:  # the run is done and saved: say where, and how to push it again
                raise PushError(f"the run finished and {self.out / 'final'} is saved (test metrics in "
                                f"{self.out / 'test_metrics.json'}), but the push to {self.cfg.push_to_hub} failed: "
                                f"{type(err).__name__}: {err}; push it with `python -m train.push {self.out / 'final'} "
                                f"{self.cfg.push_to_hub}`") from err
        return test


def _recorded_settings(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The settings as the checkpoint records them: what took effect, not defaults that did nothing
    (Taskonomy domains on other data; bf16, which only autocasts on CUDA)."""
    settings = dataclasses.asdict(cfg)
    if cfg.dataset != "taskonomy":
        settings.update(inputs=None, target=None)
    settings["bf16"] = bool(cfg.bf16 and device.type == "cuda")
    return settings


def check_settings(cfg: TrainConfig) -> None:
    """Refuse settings that would fail late (after data loading or stage 1) or mean nothing."""
    if not 0 <= cfg.ema_decay < 1:
        raise SettingsError(f"ema_decay must be in [0, 1) (0: off), got {cfg.ema_decay}")
    if cfg.flow_lr_scale < 0:
        raise SettingsError(f"flow_lr_scale must be >= 0 (0: the flow stays at its start), got {cfg.flow_lr_scale}")
    if cfg.fit_on == "train+val" and cfg.task == "genre" and cfg.thresholds != "none":
        raise SettingsError("fit_on='train+val' trains on the validation split, so genre thresholds cannot be "
                            "tuned on it: use thresholds='none' (0.5)")
    if cfg.eval_every <= 0:
        raise SettingsError(f"eval_every must be >= 1 (steps between evaluations), got {cfg.eval_every}")
    if cfg.steps < 0 or cfg.ae_steps < 0:
        raise SettingsError(f"steps and ae_steps must be >= 0, got steps={cfg.steps}, ae_steps={cfg.ae_steps}")
    if cfg.steps == 0 and (cfg.ae_steps == 0 or cfg.encoders_from):
        raise SettingsError(f"steps=0 and no stage 1 runs (ae_steps={cfg.ae_steps}"
                            f"{', encoders from a checkpoint' if cfg.encoders_from else ''}): nothing to train; "
                            "give --steps > 0")
    if cfg.encoders_from and cfg.ae_steps > 0:
        raise SettingsError(f"ae_steps={cfg.ae_steps} with encoders_from: the encoders come from the checkpoint "
                            "and stage 1 does not run; give ae_steps=0 (--ae-steps 0) or no encoders_from")
    if cfg.balance_classes not in ("none", "sqrt", "inverse"):
        raise SettingsError(f"balance_classes must be 'none', 'sqrt' or 'inverse', got {cfg.balance_classes!r}")
    if cfg.photometric and cfg.dataset not in PHOTOMETRIC_DATASETS:
        raise SettingsError(f"photometric jitter is for RGB-D segmentation (nyudv2, sunrgbd), not {cfg.dataset}")
    if cfg.balance_classes != "none" and cfg.task == "translation":
        raise SettingsError("balance_classes weighs classes, and translation has none: use balance_classes='none'")
    if cfg.text_projection not in ("random", "pca", "labels"):
        raise SettingsError(f"text_projection must be 'random', 'pca' or 'labels', got {cfg.text_projection!r}")
    if cfg.text_projection == "labels" and cfg.task != "genre":
        raise SettingsError(f"text_projection='labels' needs multi-label targets (genre), not {cfg.task}")
    if cfg.batch_size < 1:
        raise SettingsError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 2:
        raise SettingsError(f"limit must be at least 2 samples per split, got {cfg.limit}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(f"device {cfg.device!r}, but torch sees no CUDA device here: use --device cpu")
    if cfg.push_to_hub:  # a push that cannot work fails now, not after the whole run
        reason = push_unavailable_reason(cfg.push_to_hub)
        if reason is not None:
            raise SettingsError(f"--push-to-hub {cfg.push_to_hub}: {reason}; train without it and push final/ later "
                                "with `python -m train.push OUT/final REPO_ID`")
    # the model's config, before any data is read; the data brings its class names, so what is counted
    # per class is checked then
    per_class = ("class_names", "num_classes", "class_weights", "decision_thresholds")
    unread = dataclasses.replace(cfg, overrides={k: v for k, v in cfg.overrides.items() if k not in per_class})
    try:
        build_model_config(unread, Splits(None, None, None, (), {}))  # type: ignore[arg-type]
    except ConfigError as e:
        hint = (" (--image-size sets T: add --set text_context_length=N with N at most T)"
                if "text_context_length" in str(e) else "")
        raise SettingsError(f"the model config: {e}{hint}; change it with its option or --set KEY=VALUE") from e


def class_weights(dataset: Any, config: MangoConfig, mode: str = "sqrt") -> tuple[float, ...]:
    """Weights from the training labels. Segmentation: class weights proportional to
    frequency^-1/2 ("sqrt") or frequency^-1 ("inverse"), normalised to mean 1 over present classes
    (rare classes such as decals count more). Genre: BCE positive weights, negatives / positives per
    genre ("inverse", what scikit-learn's class_weight="balanced" amounts to) or its square root
    ("sqrt"), clipped to [1, 50]."""
    if mode not in ("sqrt", "inverse"):
        raise ValueError(f"balance_classes must be 'none', 'sqrt' or 'inverse', got {mode!r}")
    power = 0.5 if mode == "sqrt" else 1.0
    counts = np.zeros(config.num_classes)
    n = 0
    for i in range(len(dataset)):
        target = np.asarray(dataset[i]["target"])
        if config.task == "segmentation":
            target = target[target != 255]
            counts += np.bincount(target.astype(np.int64), minlength=config.num_classes)[: config.num_classes]
        else:
            counts += target
            n += 1
    if config.task == "segmentation":
        freq = counts / max(counts.sum(), 1)
        weights = np.where(freq > 0, np.maximum(freq, 1e-12) ** -power, 0.0)
        weights = weights / weights[freq > 0].mean()
    else:
        weights = np.clip(((n - counts) / np.maximum(counts, 1)) ** power, 1.0, 50.0)
    return tuple(round(float(w), 4) for w in weights)


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON (so NaN scores compare equal to themselves)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _device(x: Any, device: torch.device) -> Any:
    return x.to(device) if isinstance(x, torch.Tensor) else x
