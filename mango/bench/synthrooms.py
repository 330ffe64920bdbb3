"""Scenes per minute of the SynthRooms generator: render only, and render + write both layouts."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from mango.bench import refuse_below


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mango.bench synthrooms", description=__doc__)
    ap.add_argument("--n", type=int, default=300, help="scenes per measurement")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, nargs="+", default=None,
                    help="worker counts for the write measurement (default: 1 and all cores)")
    ap.add_argument("--no-write", action="store_true", help="only time rendering in memory")
    args = ap.parse_args(argv)
    refuse_below(ap, 1, ("--n", args.n), ("--size", args.size), *(("--workers", w) for w in args.workers or ()))

    from mango.data.synthrooms import render_scene, scene_seed, write_dataset

    render_scene(0, args.size)  # warm up
    t0 = time.perf_counter()
    for i in range(args.n):
        render_scene(scene_seed(0, i), args.size)
    dt = time.perf_counter() - t0
    print(f"render only (1 process):  {60 * args.n / dt:8.0f} scenes/minute  "
          f"({1000 * dt / args.n:.1f} ms/scene, {args.size}x{args.size})")
    if args.no_write:
        return 0
    cores = os.cpu_count() or 1
    for w in args.workers or sorted({1, cores}):
        tmp = tempfile.mkdtemp(prefix="synthrooms_bench_")
        try:
            meta = write_dataset(tmp, args.n, args.size, seed=0, workers=w, progress=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"render + write ({w} proc): {meta['scenes_per_minute']:8.0f} scenes/minute  "
              f"({meta['seconds']:.1f} s for {args.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
