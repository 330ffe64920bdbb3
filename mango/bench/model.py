"""Model cost: parameters, forward GFLOPs, CPU latency and peak memory per task and preset.

    python -m mango.bench model [--presets demo paper] [--tasks ...] [--reps 5] [--out PATH]

Each (task, preset) is measured in a fresh subprocess, so peak memory is that model's alone.
GFLOPs come from torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions, attention;
elementwise ops are not counted), for one sample, forward only. Latency is the median of
`--reps` batch-1 forwards after one warm-up, with torch.no_grad. On a GPU (when one is there)
bf16 autocast latency and training throughput (samples/s of loss + backward + AdamW) are added.
Published MANGO (paper scale): 72.9M parameters, 152 GFLOPs, 144 ms per image.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mango.atomic import atomic_write_text
from mango.bench import refuse_below

PUBLISHED = {"params_m": 72.9, "gflops": 152.0, "latency_ms": 144.0}
TASKS = ("segmentation", "translation", "genre")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(task: str, preset: str, reps: int, gpu: bool) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mango.models import MangoConfig, MangoModel

    torch.manual_seed(0)
    config = MangoConfig.preset(preset, task)
    model = MangoModel(config).eval()

    def inputs(batch: int, device: str = "cpu") -> tuple[Any, Any, Any]:
        size = config.image_size
        a = torch.rand(batch, config.a.channels, size, size, device=device)
        b: Any = ["an old sailor tells the story of a storm " * 8] * batch if config.b.is_text else torch.rand(
            batch, config.b.channels, size, size, device=device
        )
        if task == "segmentation":
            target = torch.randint(0, config.num_classes, (batch, size, size), device=device)
        elif task == "translation":
            target = torch.rand(batch, 3, size, size, device=device)
        else:
            target = (torch.rand(batch, config.num_classes, device=device) < 0.2).float()
        return a, b, target

    row: dict[str, Any] = {
        "task": task,
        "preset": preset,
        "tokens": 2 * config.tokens_per_modality,
        "dim": config.dim,
        "blocks": config.num_blocks,
        "params_m": model.num_parameters() / 1e6,
        "params_inference_m": (model.num_parameters() - model.num_parameters("decoders")) / 1e6,
        "params_by_part_m": {p: model.num_parameters(p) / 1e6 for p in ("encoders", "flow", "heads", "decoders")},
    }
    a, b, _ = inputs(1)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model(a, b)
        row["gflops"] = counter.get_total_flops() / 1e9
        model(a, b)  # warm-up
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(a, b)
            times.append(time.perf_counter() - start)
    row["cpu_threads"] = torch.get_num_threads()
    row["cpu_latency_ms"] = 1000 * statistics.median(times)
    row["cpu_latency_min_ms"] = 1000 * min(times)  # the least disturbed run on a shared machine
    row.update(_forward_peak_memory(model, a, b))
    row["cpu_process_peak_rss_mb"] = _peak_rss_mb()  # includes the imported libraries

    if gpu and torch.cuda.is_available():
        row.update(_measure_gpu(model, inputs, reps))
    return row


def _forward_peak_memory(model: Any, a: Any, b: Any) -> dict[str, float]:
    """Peak tensor memory of one batch-1 forward: weights + buffers + live activations.

    RSS cannot show it (the allocator keeps freed pages), so tensors are tracked as they are
    created and freed, with torch's MemTracker (a private torch API; skipped if it is gone).
    """
    import torch

    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError:
        return {}
    try:
        tracker = MemTracker()
        tracker.track_external(model)
        with torch.no_grad(), tracker:
            model(a, b)
        snapshot = {str(device): kinds for device, kinds in tracker.get_tracker_snapshot("peak").items()}
        peak = {str(getattr(k, "value", k)): v for k, v in snapshot["cpu"].items()}
    except Exception as err:  # private API: report, never fail the benchmark over it
        return {"cpu_peak_error": f"{type(err).__name__}: {err}"}
    return {"cpu_peak_mb": peak["Total"] / 2**20, "cpu_peak_activation_mb": peak.get("Activation", 0) / 2**20}


def _measure_gpu(model: Any, inputs: Any, reps: int) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"gpu": torch.cuda.get_device_name()}
    model = model.cuda()
    try:
        a, b, _ = inputs(1, "cuda")
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                model(a, b)
            torch.cuda.synchronize()
            times = []
            for _ in range(max(reps, 10)):
                start = time.perf_counter()
                model(a, b)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        out["gpu_bf16_latency_ms"] = 1000 * statistics.median(times)

        batch = 16
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        a, b, target = inputs(batch, "cuda")
        data = {"a": a, "b": b, "target": target}
        torch.cuda.reset_peak_memory_stats()
        steps = 10
        for step in range(steps + 2):
            if step == 2:
                torch.cuda.synchronize()
                start = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, _ = model.loss(data)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        torch.cuda.synchronize()
        out["gpu_bf16_train_samples_per_s"] = batch * steps / (time.perf_counter() - start)
        out["gpu_train_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu_train_batch"] = batch
    except Exception as err:  # report, do not hide: a bf16 failure is a finding
        out["gpu_error"] = f"{type(err).__name__}: {err}"
    return out


COLUMNS = [  # (header, key, width, format)
    ("task", "task", 13, "<"), ("preset", "preset", 7, "<"), ("N", "tokens", 5, ">"), ("D", "dim", 5, ">"),
    ("L", "blocks", 4, ">"), ("params M", "params_m", 10, ">.1f"), ("infer M", "params_inference_m", 9, ">.1f"),
    ("GFLOPs", "gflops", 9, ">.2f"), ("CPU ms", "cpu_latency_ms", 9, ">.1f"), ("min ms", "cpu_latency_min_ms", 9, ">.1f"),
    ("peak MB", "cpu_peak_mb", 9, ">.0f"), ("act MB", "cpu_peak_activation_mb", 8, ">.0f"),
]
GPU_COLUMNS = [("GPU ms", "gpu_bf16_latency_ms", 9, ">.1f"), ("train/s", "gpu_bf16_train_samples_per_s", 9, ">.1f")]


def _print_table(rows: list[dict[str, Any]]) -> None:
    columns = COLUMNS + (GPU_COLUMNS if any("gpu_bf16_latency_ms" in r for r in rows) else [])
    print("".join(f"{h:{f[0]}{w}}" for h, _, w, f in columns))
    for r in rows:
        if "error" in r:
            print(f"{r['task']:<13}{r['preset']:<7} ERROR {r['error']}")
            continue
        print("".join(f"{r[k]:{f[0]}{w}{f[1:]}}" if k in r else f"{'-':>{w}}" for _, k, w, f in columns))
    print(
        f"published MANGO (paper scale): {PUBLISHED['params_m']}M params, {PUBLISHED['gflops']} GFLOPs, "
        f"{PUBLISHED['latency_ms']} ms/image.\nGFLOPs: FlopCounterMode, 1 sample, forward. 'infer M' excludes the "
        "stage-1 decoders. peak MB: weights + activations of a batch-1 forward (act MB: activations)."
    )


def main(argv: list[str] | None = None) -> int:
    from mango.models.config import PRESETS

    parser = argparse.ArgumentParser(prog="python -m mango.bench model", description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["demo", "paper"], choices=sorted(PRESETS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--reps", type=int, default=5, help="timed forwards per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU measurements")
    parser.add_argument("--out", type=Path, default=Path("bench_results/model.json"))
    parser.add_argument("--one", nargs=2, metavar=("TASK", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    refuse_below(parser, 1, ("--reps", args.reps), ("--threads", args.threads))

    if args.one:  # child process: one measurement, JSON on the last stdout line
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.one[0], args.one[1], args.reps, not args.no_gpu)))
        return 0

    rows = []
    for preset in args.presets:
        for task in args.tasks:
            cmd = [sys.executable, "-m", "mango.bench", "model", "--one", task, preset, "--reps", str(args.reps)]
            cmd += ["--threads", str(args.threads)] if args.threads else []
            cmd += ["--no-gpu"] if args.no_gpu else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
                rows.append({"task": task, "preset": preset, "error": last[0]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"measured {task} / {preset}", file=sys.stderr)
    _print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps({"published": PUBLISHED, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all("error" not in r for r in rows) else 1
