"""`python -m app.bench`: latency of the app's handlers (p50/p95) and its start-up time;
`python -m app.bench --load`: resident memory and latency under many clients (issue #12).

Handlers are timed in-process on the bundled example inputs with the models the app would load
(bundled checkpoints, else the untrained fallbacks: same architecture, same cost), through the same
methods the UI calls. With ``--client`` they are timed end to end through a launched server and
gradio_client instead (queue, uploads and downloads included). Start-up is timed from spawning
``python app.py`` to the page and its API answering. Budgets (issue #6, 2-core CPU): a prediction
with its attention maps < 1 s, contributions < 5 s, four latent samples < 2 s, start-up < 20 s.

The load scenario (``--load``) spawns ``python app.py`` and drives it with gradio_client: 8 clients
× 20 mixed requests (predictions, attention, contributions, sampling, in turn), then 8 concurrent
"Explain this output" requests while one more client keeps asking for predictions. It reports the
server's resident memory (VmRSS, and the peak VmHWM) after each phase and after 10 s idle, and the
latency of the predictions made while the contributions run. Targets (issue #12): resident memory
≤ 2.5 GB afterwards, prediction p95 ≤ 2 s while contributions run. ``--visitors N`` then sends N
visitors one after another, each a new session with one segmentation and one genre prediction, and
reports how resident memory grows per visitor before and after gradio's session cap
(``MANGO_STATE_SESSIONS``, `app.ui.STATE_SESSIONS`) is reached.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mango.atomic import atomic_write_text
from mango.bench import refuse_below

REPO = Path(__file__).resolve().parents[1]
BUDGETS_S = {
    "segment + attention": 1.0, "translate + attention": 1.0, "genre + attention": 1.0,
    "segment_contributions": 5.0, "translate_contributions": 5.0, "genre_contributions": 5.0,
    "segment_sample (4)": 2.0, "translate_sample (4)": 2.0, "genre_sample (4)": 2.0,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn_app(port: int, app_dir: Path = REPO, log: Any = subprocess.DEVNULL) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=app_dir, env=env,
                            stdout=log, stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else log)


def _wait_ready(proc: subprocess.Popen, port: int, start: float, timeout: float) -> float:
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode} before it was ready")
        try:
            for path in ("/", "/gradio_api/info"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                    if response.status != 200:
                        raise OSError(response.status)
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"app.py was not ready within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure_startup(timeout: float = 120.0) -> float:
    """Seconds from spawning `python app.py` until / and /gradio_api/info answer."""
    port = _free_port()
    start = time.perf_counter()
    proc = _spawn_app(port)
    try:
        return _wait_ready(proc, port, start, timeout)
    finally:
        _stop(proc)


def _memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024.0, 1)
    return found


# a layer every bundled checkpoint has (two blocks of MMCA, IMCA, LICA)
LAYER = "block 1 · layer 3 · IMCA [A¹,B¹|A²,B²]"


def bench_inputs() -> tuple[int, Any, Any, Any]:
    """What every timed case reads: the Integrated Gradients step count a user gets without touching
    the slider, two bundled example scenes and a bundled film."""
    from . import examples, ranges

    scenes, films = examples.scenes(), examples.films()
    if len(scenes) < 2 or not films:
        raise RuntimeError("assets/examples is incomplete: run `python -m app.examples`")
    return int(ranges.IG_STEPS.default), scenes[0], scenes[1], films[0]


def _percentiles(times: list[float], failed: int = 0) -> dict[str, float]:
    """Latency of the requests that succeeded; a failed one (often fast: refused or crashed) would
    flatter them, so it is only counted."""
    if not times:
        return {"n": 0, "failed": failed}
    return {"n": len(times), "failed": failed, "p50_s": round(float(np.percentile(times, 50)), 3),
            "p95_s": round(float(np.percentile(times, 95)), 3), "max_s": round(max(times), 3)}


def measure_load(clients: int = 8, requests: int = 20, contributions: int = 8, idle_s: float = 10.0,
                 app_dir: Path = REPO, visitors: int = 0) -> dict[str, Any]:
    """The issue #12 scenario against a spawned `python app.py` (see the module docstring)."""
    from gradio_client import Client, handle_file

    from .events import SETTINGS

    steps, s1, s2, film = bench_inputs()
    rgb, depth = handle_file(s1.file("rgb")), handle_file(s1.file("depth"))
    shade, texture = handle_file(s1.file("reshading")), handle_file(s1.file("edge_texture"))
    poster = handle_file(film.poster)
    setting = next(iter(SETTINGS))  # shade + texture → rgb, the app's first translation setting
    mixed: list[tuple[str, tuple]] = [
        ("/segment", (rgb, depth)),
        ("/segment_attention", (rgb, depth, LAYER, "rgb", 27)),
        ("/genre", (poster, film.plot)),
        ("/genre_attention", (poster, film.plot, LAYER, "plot", 3)),
        ("/segment_contributions", (rgb, depth, "wall", steps)),
        ("/segment_sample", (0.7, 0, 4)),
        ("/translate", (setting, shade, texture)),
        ("/genre_contributions", (poster, film.plot, "Drama", steps)),
        ("/segment_resample", (rgb, depth, "rgb", 0.7, 0, 4)),
        ("/segment_interpolate", (rgb, depth, s2.name, 6)),
    ]
    heavy = [("/segment_contributions", (rgb, depth, "wall", steps)), ("/genre_contributions", (poster, film.plot, "Drama", steps)),
             ("/translate_contributions", (setting, shade, texture, "mean brightness", steps))]
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    downloads = Path(tempfile.mkdtemp(prefix="mango-load-"))
    server_log = open(downloads / "server.log", "w")
    proc = _spawn_app(port, app_dir, server_log)
    result: dict[str, Any] = {"clients": clients, "requests_per_client": requests, "concurrent_contributions": contributions,
                              "load_average_before": os.getloadavg()}
    try:
        result["startup_s"] = round(_wait_ready(proc, port, time.perf_counter(), 180.0), 2)
        time.sleep(2.0)
        result["memory_at_start_mb"] = _memory_mb(proc.pid)
        print(f"  started in {result['startup_s']} s; memory {result['memory_at_start_mb']}", flush=True)
        pool = [Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)
                for _ in range(clients + 1)]
        latencies: dict[str, list[float]] = {}
        failures: dict[str, int] = {}
        lock = threading.Lock()
        errors: list[str] = []

        def timed(client: Any, api_name: str, args: tuple) -> float | None:
            """Seconds the request took, or None when it failed (counted and reported, never hidden)."""
            start = time.perf_counter()
            try:
                client.predict(*args, api_name=api_name)
            except Exception as err:
                with lock:
                    errors.append(f"{api_name}: {type(err).__name__}: {err}")
                    failures[api_name] = failures.get(api_name, 0) + 1
                return None
            elapsed = time.perf_counter() - start
            with lock:
                latencies.setdefault(api_name, []).append(elapsed)
            return elapsed

        def one_client(k: int) -> None:
            for r in range(requests):
                api_name, args = mixed[(k + r) % len(mixed)]
                timed(pool[k], api_name, args)

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as workers:
            list(workers.map(one_client, range(clients)))
        result["mixed_phase_s"] = round(time.perf_counter() - start, 1)
        result["mixed_latency"] = {name: _percentiles(latencies.get(name, []), failures.get(name, 0))
                                   for name in sorted(set(latencies) | set(failures))}
        result["memory_after_mixed_mb"] = _memory_mb(proc.pid)
        print(f"  {clients} clients × {requests} mixed requests in {result['mixed_phase_s']} s; "
              f"memory {result['memory_after_mixed_mb']}", flush=True)

        during: list[float | None] = []
        finished = threading.Event()

        def probe() -> None:
            while not finished.is_set():
                during.append(timed(pool[-1], "/segment", (rgb, depth)))
                time.sleep(0.2)

        explain: list[float | None] = []

        def contribute(k: int) -> None:
            api_name, args = heavy[k % len(heavy)]
            explain.append(timed(pool[k % clients], api_name, args))

        prober = threading.Thread(target=probe)
        start = time.perf_counter()
        with ThreadPoolExecutor(contributions) as workers:
            futures = [workers.submit(contribute, k) for k in range(contributions)]
            time.sleep(0.5)
            prober.start()
            for future in futures:
                future.result()
        finished.set()
        prober.join()
        result["contribution_phase_s"] = round(time.perf_counter() - start, 1)
        result["contributions_latency"] = _succeeded(explain)
        result["prediction_latency_during_contributions"] = _succeeded(during)
        result["memory_after_contributions_mb"] = _memory_mb(proc.pid)
        time.sleep(idle_s)
        result["memory_after_idle_mb"] = _memory_mb(proc.pid)
        if visitors:
            result["visitors"] = _visitors(visitors, lambda: Client(url, verbose=False, download_files=str(downloads),
                                                                    analytics_enabled=False),
                                           [("/segment", (rgb, depth)), ("/genre", (poster, film.plot))], proc.pid,
                                           timed, clients + 1)
        result["errors"] = errors[:20]
        result["error_count"] = len(errors)
    finally:
        _stop(proc)
        server_log.close()
    result["load_average_after"] = os.getloadavg()
    rss = max(result["memory_after_contributions_mb"]["VmRSS"], result["memory_after_idle_mb"]["VmRSS"])
    p95 = result["prediction_latency_during_contributions"].get("p95_s", float("inf"))
    result["targets"] = {"rss_after_le_2500_mb": rss <= 2500, "prediction_p95_le_2_s": p95 <= 2.0,
                         "no_failed_requests": not errors}
    print(f"  {contributions} concurrent contributions: {result['contributions_latency']}; predictions meanwhile: "
          f"{result['prediction_latency_during_contributions']}", flush=True)
    print(f"  memory after: {result['memory_after_contributions_mb']}; after {idle_s:.0f} s idle: "
          f"{result['memory_after_idle_mb']}; errors: {len(errors)}", flush=True)
    print(f"  targets: RSS ≤ 2.5 GB {'ok' if result['targets']['rss_after_le_2500_mb'] else 'MISSED'}, prediction p95 "
          f"≤ 2 s {'ok' if result['targets']['prediction_p95_le_2_s'] else 'MISSED'}, no failed requests "
          f"{'ok' if result['targets']['no_failed_requests'] else 'MISSED'}", flush=True)
    return result


def _visitors(count: int, new_client: Callable[[], Any], requests: list[tuple[str, tuple]], pid: int,
              timed: Callable[[Any, str, tuple], float | None], sessions_before: int) -> dict[str, Any]:
    """Visitors one after another, each a new session making ``requests``: the server's resident memory
    every eighth of the way, and its growth per visitor before and after gradio's session cap is reached
    (the cap of the spawned app, which reads the same environment)."""
    from .ui import STATE_SESSIONS

    start = time.perf_counter()
    steps = sorted({round(count * k / 8) for k in range(1, 9)})
    memory = [(0, _memory_mb(pid)["VmRSS"])]
    for visitor in range(1, count + 1):
        client = new_client()
        for api_name, args in requests:
            timed(client, api_name, args)
        client.close()
        if visitor in steps:
            memory.append((visitor, _memory_mb(pid)["VmRSS"]))
    capped_at = max(0, STATE_SESSIONS - sessions_before)  # the visitor whose session fills the cap

    def growth(points: list[tuple[int, float]]) -> float | None:
        return round((points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]), 2) if len(points) > 1 else None

    before = [point for point in memory if point[0] <= capped_at]
    after = [point for point in memory if point[0] >= capped_at]
    found = {"visitors": count, "state_sessions": STATE_SESSIONS, "seconds": round(time.perf_counter() - start, 1),
             "memory_mb": memory, "growth_mb_per_visitor_below_cap": growth(before),
             "growth_mb_per_visitor_beyond_cap": growth(after)}
    print(f"  {count} visitors, one new session each (gradio keeps {STATE_SESSIONS}): resident memory "
          f"{memory[0][1]:.0f} → {memory[-1][1]:.0f} MB; per visitor {found['growth_mb_per_visitor_below_cap']} MB "
          f"below the cap, {found['growth_mb_per_visitor_beyond_cap']} MB beyond it", flush=True)
    return found


def _succeeded(times: list[float | None]) -> dict[str, float]:
    """Percentiles of the timed requests that succeeded (`timed` gives None for a failed one)."""
    return _percentiles([t for t in times if t is not None], sum(t is None for t in times))


def _cases_in_process(repeat_inputs: bool) -> tuple[list[tuple[str, Callable[[], Any]]], dict[str, str]]:
    from .events import SETTINGS
    from .ui import build_demo

    steps, s1, s2, film = bench_inputs()
    demo = build_demo()
    app = demo.mango_app  # type: ignore[attr-defined]
    shade, depth_normal = list(SETTINGS)
    rgb, depth = s1.file("rgb"), s1.file("depth")
    sh, tx = s1.file("reshading"), s1.file("edge_texture")

    def fresh(*paths: str) -> None:
        # Views of one input share a small cache of decoded inputs (as in the app); without
        # --cached every timed call starts from the files.
        if not repeat_inputs:
            for runner in app.runners.values():
                runner._cache.clear()

    def seg_pred() -> None:
        fresh()
        app.segment("segmentation", rgb, depth)
        app.attention("segmentation", rgb, depth, LAYER, "rgb", 27)

    def tr_pred() -> None:
        fresh()
        app.translate(shade, sh, tx)
        app.attention(shade, sh, tx, LAYER, "shade", 27)

    def genre_pred() -> None:
        fresh()
        app.genre("genre", film.poster, film.plot)
        app.attention_with_words("genre", film.poster, film.plot, LAYER, "plot", 3)

    def progress(*_: Any, **__: Any) -> None:
        return None

    cases = [
        ("segment + attention", seg_pred),
        ("segment_attention", lambda: app.attention("segmentation", rgb, depth, LAYER, "depth", 20)),
        ("segment_contributions", lambda: app.contributions("segmentation", rgb, depth, "wall", steps, progress)),
        ("segment_sample (4)", lambda: app.sample("segmentation", 0.7, 0, 4, progress)),
        ("segment_resample (4)", lambda: app.resample("segmentation", rgb, depth, "rgb", 0.7, 0, 4, progress)),
        ("segment_interpolate (6)", lambda: app.interpolate("segmentation", rgb, depth, s2.name, 6, progress)),
        ("translate + attention", tr_pred),
        ("translate_contributions", lambda: app.contributions(shade, sh, tx, "mean brightness", steps, progress)),
        ("translate_sample (4)", lambda: app.sample(shade, 0.7, 0, 4, progress)),
        ("translate depth+normal", lambda: app.translate(depth_normal, s1.file("depth_zbuffer"), s1.file("normal"))),
        ("genre + attention", genre_pred),
        ("genre_contributions", lambda: app.contributions("genre", film.poster, film.plot, "Drama", steps, progress)),
        ("genre_sample (4)", lambda: app.sample("genre", 0.7, 0, 4, progress)),
    ]
    sources = {key: runner.loaded.source for key, runner in app.runners.items()}
    return cases, sources


def _cases_client() -> tuple[list[tuple[str, Callable[[], Any]]], dict[str, str], Any]:
    from gradio_client import Client, handle_file

    from .ui import build_demo, launch_kwargs

    steps, s1, s2, film = bench_inputs()
    demo = build_demo()
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
    rgb, depth = handle_file(s1.file("rgb")), handle_file(s1.file("depth"))
    poster = handle_file(film.poster)

    def call(*args: Any, api_name: str) -> Callable[[], Any]:
        return lambda: client.predict(*args, api_name=api_name)

    def seg_pred() -> None:
        client.predict(rgb, depth, api_name="/segment")
        client.predict(rgb, depth, LAYER, "rgb", 27, api_name="/segment_attention")

    def genre_pred() -> None:
        client.predict(poster, film.plot, api_name="/genre")
        client.predict(poster, film.plot, LAYER, "plot", 3, api_name="/genre_attention")

    cases = [
        ("segment + attention", seg_pred),
        ("segment_contributions", call(rgb, depth, "wall", steps, api_name="/segment_contributions")),
        ("segment_sample (4)", call(0.7, 0, 4, api_name="/segment_sample")),
        ("genre + attention", genre_pred),
        ("genre_contributions", call(poster, film.plot, "Drama", steps, api_name="/genre_contributions")),
        ("genre_sample (4)", call(0.7, 0, 4, api_name="/genre_sample")),
        ("segment_interpolate (6)", call(rgb, depth, s2.name, 6, api_name="/segment_interpolate")),
    ]
    sources = {key: runner.loaded.source for key, runner in demo.mango_app.runners.items()}  # type: ignore[attr-defined]
    return cases, sources, demo


def time_cases(cases: list[tuple[str, Callable[[], Any]]], repeats: int, warmup: int) -> list[dict[str, Any]]:
    """p50/p95/max seconds of ``repeats`` timed calls per case, after ``warmup`` untimed ones."""
    if repeats < 1:  # percentiles of no times do not exist
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rows = []
    for name, fn in cases:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        budget = BUDGETS_S.get(name)
        p50, p95 = float(np.percentile(times, 50)), float(np.percentile(times, 95))
        rows.append(dict(handler=name, p50_s=round(p50, 4), p95_s=round(p95, 4), max_s=round(max(times), 4),
                         repeats=repeats, budget_s=budget, within_budget=None if budget is None else p95 < budget))
        print(f"  {name:<26} p50 {p50 * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms"
              + ("" if budget is None else f"   budget {budget * 1000:6.0f} ms {'ok' if p95 < budget else 'OVER'}"),
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per handler (default 20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 2)")
    parser.add_argument("--client", action="store_true", help="time through a launched server and gradio_client")
    parser.add_argument("--cached", action="store_true", help="let repeated calls reuse decoded inputs, as the app does")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the app's, 1)")
    parser.add_argument("--load", action="store_true",
                        help="only the load scenario: 8 clients × 20 mixed requests, then 8 concurrent contributions")
    parser.add_argument("--visitors", type=int, default=0,
                        help="with --load: then N visitors one after another, each a new session (memory per session)")
    parser.add_argument("--app-dir", type=Path, default=REPO, help=argparse.SUPPRESS)  # e.g. an older checkout
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default bench_results/app.json, "
                        "or app_load.json with --load)")
    args = parser.parse_args(argv)
    if args.load:  # the load scenario has its own fixed mix: these would be silently ignored
        given = [name for name, value in (("--repeats", args.repeats), ("--warmup", args.warmup),
                                          ("--threads", args.threads), ("--client", args.client or None),
                                          ("--cached", args.cached or None), ("--no-startup", args.no_startup or None))
                 if value is not None]
        if given:
            parser.error(f"{', '.join(given)} do(es) not apply to --load (a fixed scenario of a spawned app)")
    elif args.visitors:
        parser.error("--visitors applies to --load only")
    refuse_below(parser, 0, ("--visitors", args.visitors))
    args.repeats = 20 if args.repeats is None else args.repeats
    args.warmup = 2 if args.warmup is None else args.warmup
    refuse_below(parser, 1, ("--repeats", args.repeats))
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    refuse_below(parser, 1, ("--threads", args.threads))  # 0 would be ignored
    if args.load:
        out = args.out or Path("bench_results/app_load.json")
        print("load scenario (issue #12): spawning python app.py", flush=True)
        result = measure_load(app_dir=args.app_dir, visitors=args.visitors)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(result, indent=2))
        print(f"wrote {out}")
        return 0
    args.out = args.out or Path("bench_results/app.json")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import torch

    if args.threads:
        os.environ["MANGO_TORCH_THREADS"] = str(args.threads)  # build_demo applies it
    result: dict[str, Any] = dict(torch=torch.__version__, cpus=os.cpu_count(),
                                  mode="client" if args.client else "in-process", load_average=os.getloadavg())
    if not args.no_startup:
        startup = measure_startup()
        result["startup_s"] = round(startup, 2)
        print(f"start-up (spawn `python app.py` -> page and API answer): {startup:.1f} s "
              f"{'ok' if startup < 20 else 'OVER'} (budget 20 s)", flush=True)
    demo = None
    if args.client:
        cases, sources, demo = _cases_client()
    else:
        cases, sources = _cases_in_process(args.cached)
    result["models"] = sources
    result["threads"] = torch.get_num_threads()
    print(f"handlers ({result['mode']}, {args.repeats} calls each, torch {torch.__version__}, "
          f"{result['threads']} threads, models: {sources}):", flush=True)
    try:
        result["handlers"] = time_cases(cases, args.repeats, args.warmup)
    finally:
        if demo is not None:
            demo.close()
    result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
