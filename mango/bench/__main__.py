"""Dispatch `python -m mango.bench NAME ...` to `mango.bench.NAME.main(argv)`."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "flow": "flow forward/inverse time, memory, round-trip error, triangular solve vs dense inverse",
    "model": "parameters, GFLOPs, latency and memory of each task's model at the demo and paper presets",
    "synthrooms": "scenes per minute of the procedural RGB-D generator",
    "density": "flow bits/dim against Gaussian baselines; KID/FD of decoded samples vs reconstructions (issue 14)",
    "probe": "genre: logistic probes on backbone outputs, features F and latent Z (where genre signal is lost)",
    "explanations": "do explanations point at the modality that reveals SynthRooms' known-answer objects?",
    "holes": "segmentation with depth holes made in SynthRooms scenes: complete, holes read as 0 m, holes filled",
}
ELSEWHERE = {"app": "python -m app.bench"}  # mango knows nothing of the app: its benchmark lives beside it


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in BENCHMARKS:
        asked = not argv or argv[0] in {"-h", "--help"}
        out = sys.stdout if asked else sys.stderr
        if not asked and argv[0] in ELSEWHERE:
            print(f"python -m mango.bench: error: the {argv[0]} benchmark is `{ELSEWHERE[argv[0]]}`", file=out)
        elif not asked:
            print(f"python -m mango.bench: error: unknown benchmark {argv[0]!r}; choose one of {', '.join(BENCHMARKS)}\n",
                  file=out)
        print("usage: python -m mango.bench NAME [options]\n", file=out)
        for name, what in BENCHMARKS.items():
            print(f"  {name:<13} {what}", file=out)
        for name, command in ELSEWHERE.items():
            print(f"\nThe {name}'s handlers (latency, start-up, load): {command}", file=out)
        return 0 if asked else 2
    module = importlib.import_module(f"mango.bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
