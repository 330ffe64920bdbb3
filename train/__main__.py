"""python -m train: train a MANGO model (two stages) and write a checkpoint.

Examples
  python -m train --dataset nyudv2 --root data/nyudv2 --out runs/nyu --preset paper --steps 40000
  torchrun --nproc_per_node 8 -m train --dataset nyudv2 --root data/nyudv2 --out runs/nyu --preset paper
  python -m train --dataset taskonomy --root data/taskonomy --inputs depth_zbuffer normal --target rgb --out runs/tr
  python -m train --dataset mmimdb --root data/mmimdb --out runs/genre --set fusion=late
Re-running with the same --out resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys

from .cli import printable, reports_user_errors
from .data import DATASETS, FIT_ON
from .trainer import SettingsError, TrainConfig, Trainer, check_settings


def _override(text: str) -> tuple[str, object]:
    """`--set key=value`: the value is parsed as JSON when it can be (numbers, lists, null)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, tuple(value) if isinstance(value, list) else value


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig(dataset="nyudv2", root="", out="")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--root", required=True, help="dataset folder in its standard layout")
    p.add_argument("--out", required=True, help="run folder: logs, last/, best/, final/")
    p.add_argument("--preset", default=d.preset, choices=["tiny", "demo", "paper"])
    p.add_argument("--inputs", nargs=2, default=list(d.inputs), metavar="DOMAIN", help="Taskonomy input domains")
    p.add_argument("--target", default=d.target, help="Taskonomy target domain")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--ae-steps", type=int, default=None,
                   help=f"stage 1 (autoencoder) steps (default {d.ae_steps}; 0 with --encoders-from)")
    p.add_argument("--steps", type=int, default=d.steps, help="stage 2 (flow + head) steps")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--ae-lr", type=float, default=d.ae_lr)
    p.add_argument("--flow-lr-scale", type=float, default=d.flow_lr_scale,
                   help="stage 2: the flow learns at --lr times this; the head and projections at --lr")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--nll-weight", type=float, default=None, help="lambda for bits/dim (default: the preset's)")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--encoders-from", default=None, help="checkpoint whose stage-1 encoders to reuse")
    p.add_argument("--no-cache", action="store_true", help="recompute frozen backbones every step in stage 2")
    p.add_argument("--no-mirror", action="store_true", help="no mirrored copies in the stage-2 backbone cache")
    p.add_argument("--photometric", action="store_true",
                   help="jitter the training colour images' brightness, contrast, saturation and hue, and blur "
                        "some (RGB-D segmentation; stage 2 then runs the backbones every step)")
    p.add_argument("--balance-classes", default=d.balance_classes, choices=["none", "sqrt", "inverse"],
                   help="class weights (segmentation) / positive weights (genre) from the training labels")
    p.add_argument("--thresholds", default=d.thresholds, choices=["per_class", "global", "none"],
                   help="genre decision thresholds, tuned on the validation split")
    p.add_argument("--text-projection", default=d.text_projection, choices=["random", "pca", "labels"],
                   help="start a frozen text encoder's projection at random, at its states' principal axes, "
                        "or at the directions that predict the training labels first (genre)")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay,
                   help="stage 2 selects and ships a moving average of the weights with this decay (0: off)")
    p.add_argument("--fit-on", default=d.fit_on, choices=FIT_ON,
                   help="train+val: also train on the validation split, for a final fit at a step count chosen "
                        "beforehand; nothing is then selected on validation, and the last step ships")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="read only the first N samples of each split: a quick run of the whole path (its scores "
                        "mean nothing)")
    p.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                   metavar="KEY=VALUE", help="override a MangoConfig field, e.g. --set fusion=late")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID")
    a = p.parse_args(argv)
    if a.encoders_from and a.ae_steps:  # stage 1 does not run: a count would be recorded, never trained
        p.error(f"--ae-steps {a.ae_steps} with --encoders-from: the encoders come from the checkpoint and stage 1 "
                "does not run; leave --ae-steps out (or give 0)")
    ae_steps = a.ae_steps if a.ae_steps is not None else 0 if a.encoders_from else d.ae_steps
    try:  # TrainConfig takes --set image_size as the size the data is read at
        cfg = _config(a, ae_steps, dict(a.overrides))
        check_settings(cfg)  # here too: train.crossval reads its data before it makes a Trainer
    except SettingsError as e:
        p.error(str(e))
    return cfg


def _config(a: argparse.Namespace, ae_steps: int, overrides: dict) -> TrainConfig:
    return TrainConfig(
        dataset=a.dataset, root=a.root, out=a.out, preset=a.preset, inputs=tuple(a.inputs), target=a.target,
        image_size=a.image_size, batch_size=a.batch_size, ae_steps=ae_steps, steps=a.steps, lr=a.lr,
        ae_lr=a.ae_lr, flow_lr_scale=a.flow_lr_scale, weight_decay=a.weight_decay, warmup=a.warmup,
        nll_weight=a.nll_weight, eval_every=a.eval_every, val_fraction=a.val_fraction, seed=a.seed,
        num_workers=a.num_workers, device=a.device, bf16=not a.no_bf16, encoders_from=a.encoders_from,
        overrides=overrides,
        cache_backbones=not a.no_cache, mirror=not a.no_mirror, photometric=a.photometric,
        balance_classes=a.balance_classes,
        thresholds=a.thresholds, text_projection=a.text_projection, ema_decay=a.ema_decay, fit_on=a.fit_on,
        limit=a.limit, push_to_hub=a.push_to_hub,
    )


@reports_user_errors("python -m train")
def main(argv: list[str] | None = None) -> int:
    result = Trainer(parse_args(argv)).run()  # a settings error: one line (reports_user_errors)
    if result:
        print(printable(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
