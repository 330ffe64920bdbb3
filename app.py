"""MANGO's teaching app: `python app.py` serves it on http://127.0.0.1:7860 (offline, bundled checkpoints).

Choose other checkpoints (local folder or Hugging Face Hub repo id, optionally @revision):

    python app.py --segmentation user/mango-seg@main --genre ./my-genre-checkpoint
    MANGO_SEGMENTATION_CHECKPOINT=user/mango-seg python app.py

The same file is the Hugging Face Space entry point (README front matter: sdk gradio, app_file app.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
STARTED = time.perf_counter()  # "ready in" counts the imports too (torch, gradio: several seconds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from app.checkpoints import TASK_SPECS

    parser = argparse.ArgumentParser(description="MANGO: see how two modalities fuse (Gradio app).")
    for key, spec in TASK_SPECS.items():
        parser.add_argument(spec.cli_flag, dest=key.replace("-", "_"), metavar="PATH_OR_REPO[@REV]", default=None,
                            help=f"checkpoint for {spec.title} (default: ${spec.env_var}, else assets/checkpoints/{key})")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 on a Space)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from app.checkpoints import TASK_SPECS, chosen_sources, load_all
    from app.ui import build_demo, launch_kwargs

    cli = {key: getattr(args, key.replace("-", "_")) for key in TASK_SPECS}
    demo = build_demo(load_all(chosen_sources(cli)))
    demo.launch(server_name=args.host, server_port=args.port, share=args.share or None, prevent_thread_lock=True,
                **launch_kwargs())
    logging.getLogger("mango.app").info("ready in %.1f s", time.perf_counter() - STARTED)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
