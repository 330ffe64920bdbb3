"""`python -m mango.bench flow`: speed, memory and exactness of the MANGO flow, per ICA form.

Each (size, form) runs in a fresh process so its peak memory (max RSS above the idle process) is
its own. The paper size has 12 blocks (96 ICA layers), so its round-trip error is the float32
inverse at the paper's depth, at initialisation. Also times the ICA inverse's triangular solve
against a dense-inverse reference.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue as queue_module
import resource
import time
from pathlib import Path
from typing import Any, Callable

import torch

from mango.atomic import atomic_write_text
from mango.bench import refuse_below

SIZES = {
    "demo": dict(tokens_per_modality=64, dim=128, num_blocks=2),
    "paper": dict(tokens_per_modality=256, dim=768, num_blocks=12),
}
def _default_form() -> dict:
    from mango.models import MangoConfig

    cfg = MangoConfig()
    return dict(ica_form=cfg.ica_form, gate_range=cfg.gate_range, gate_init=cfg.gate_init, value_affine=cfg.value_affine)


# the flow options of each ICA form compared by the ablation (mango.flow.ica); "default" is MangoConfig's
FORMS = {
    "default": _default_form(),
    "gated": dict(ica_form="gated"),
    "signed gate": dict(ica_form="gated", gate_range=(-0.5, 0.5), gate_init=0.0),
    "identity_plus": dict(ica_form="identity_plus"),
    "diag_bias": dict(ica_form="diag_bias"),
    "coupling only": dict(mixer="coupling"),
}


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure_size(name: str, form: str, batch: int, repeats: int, device: str, queue) -> None:
    from mango.flow import MangoFlow

    torch.manual_seed(0)
    size = SIZES[name]
    rss_before = _peak_rss_mb()
    flow = MangoFlow(size["dim"], size["tokens_per_modality"], size["num_blocks"], **FORMS[form]).to(device).eval()
    x = torch.randn(batch, 2 * size["tokens_per_modality"], size["dim"], device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        z, _ = flow(x)

        def fwd():
            flow(x)
            sync()

        def inv():
            flow.inverse(z)
            sync()

        t_fwd, t_inv = _best_time(fwd, repeats), _best_time(inv, repeats)
        error = flow.roundtrip_error(x)
    queue.put(
        dict(
            size=name,
            form=form,
            **size,
            batch=batch,
            params_m=sum(p.numel() for p in flow.parameters()) / 1e6,
            forward_ms_per_sample=1e3 * t_fwd / batch,
            inverse_ms_per_sample=1e3 * t_inv / batch,
            peak_rss_increase_mb=_peak_rss_mb() - rss_before,
            cuda_peak_mb=torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
            roundtrip_error_fp32=error,
            min_attention_diagonal=flow.min_attention_diagonal,
        )
    )


def _measure_child(name: str, form: str, batch: int, repeats: int, device: str, queue) -> None:
    """`_measure_size` in the child, its failure sent back as an error row (the traceback still goes
    to stderr) so the parent can name it."""
    try:
        _measure_size(name, form, batch, repeats, device, queue)
    except BaseException as err:
        queue.put(dict(size=name, form=form, error=f"{type(err).__name__}: {err}"))
        raise


def run_in_child(ctx: Any, target: Callable[..., None], args: tuple,
                 poll_s: float = 0.5) -> tuple[dict[str, Any] | None, int | None]:
    """Run ``target(*args, queue)`` in a ``ctx`` process: what it put on the queue (None when it ended
    without a result: crashed, killed) and its exit code. Polled, so a dead child cannot leave the
    parent waiting forever."""
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, results))
    proc.start()
    result = None
    try:
        while result is None:
            try:
                result = results.get(timeout=poll_s)
            except queue_module.Empty:
                if not proc.is_alive():  # a result put just before exiting is already in the pipe
                    try:
                        result = results.get(timeout=poll_s)
                    except queue_module.Empty:
                        break
    finally:
        proc.join(timeout=None if result is not None else 5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        results.close()
    return result, proc.exitcode


def triangular_vs_dense(n: int, width: int, batch: int = 8, repeats: int = 5) -> dict:
    """Solve A X = Y for a causal attention A: triangular solve against inv(A) @ Y."""
    torch.manual_seed(0)
    scores = torch.randn(batch, n, n) + 10 * torch.eye(n)
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    attn = torch.softmax(scores, dim=-1)
    x = torch.randn(batch, n, width)
    y = attn @ x
    t_tri = _best_time(lambda: torch.linalg.solve_triangular(attn, y, upper=False), repeats)
    t_dense = _best_time(lambda: torch.linalg.inv(attn) @ y, repeats)
    err_tri = float((torch.linalg.solve_triangular(attn, y, upper=False) - x).abs().max())
    err_dense = float((torch.linalg.inv(attn) @ y - x).abs().max())
    return dict(
        n=n,
        width=width,
        batch=batch,
        triangular_ms=1e3 * t_tri,
        dense_inverse_ms=1e3 * t_dense,
        speedup=t_dense / t_tri,
        triangular_error=err_tri,
        dense_error=err_dense,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mango.bench flow", description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("bench_results/flow.json"))
    args = parser.parse_args(argv)
    refuse_below(parser, 1, ("--batch", args.batch), ("--repeats", args.repeats))

    ctx = mp.get_context("spawn")
    rows = []
    for name in args.sizes:
        for form in args.forms:
            # a failed (size, form) becomes an error row: the rows measured before it are still written
            row, code = run_in_child(ctx, _measure_child, (name, form, args.batch, args.repeats, args.device))
            if row is None:
                row = dict(size=name, form=form, error=f"the measuring process ended (exit code {code}) without a result")
            rows.append(row)
    solves = [triangular_vs_dense(n, w) for n, w in ((64, 128), (256, 768))]

    print(f"MANGO flow on {args.device} (torch {torch.__version__}, {torch.get_num_threads()} threads), batch {args.batch}")
    print(f"{'size':<6} {'form':<14} {'tokens':>7} {'D':>4} {'L':>3} {'params':>8} {'fwd ms/s':>9} {'inv ms/s':>9} "
          f"{'peak MB':>8} {'rt err fp32':>11} {'min A_ii':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['size']:<6} {r['form']:<14} ERROR {r['error']}")
            continue
        min_diag = "-" if r["min_attention_diagonal"] is None else f"{r['min_attention_diagonal']:.3f}"
        print(f"{r['size']:<6} {r['form']:<14} {2 * r['tokens_per_modality']:>7} {r['dim']:>4} {r['num_blocks']:>3} "
              f"{r['params_m']:>7.2f}M {r['forward_ms_per_sample']:>9.1f} {r['inverse_ms_per_sample']:>9.1f} "
              f"{r['peak_rss_increase_mb']:>8.0f} {r['roundtrip_error_fp32']:>11.2e} {min_diag:>8}")
    print("\nICA inverse: triangular solve vs dense inverse (batch 8)")
    print(f"{'n':>4} {'width':>6} {'tri ms':>8} {'dense ms':>9} {'speedup':>8} {'tri err':>9} {'dense err':>9}")
    for s in solves:
        print(f"{s['n']:>4} {s['width']:>6} {s['triangular_ms']:>8.2f} {s['dense_inverse_ms']:>9.2f} "
              f"{s['speedup']:>7.1f}x {s['triangular_error']:>9.1e} {s['dense_error']:>9.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(dict(device=args.device, torch=torch.__version__, flow=rows, solve=solves), indent=2))
    print(f"\nwrote {args.out}")
    return 0 if all("error" not in r for r in rows) else 1
