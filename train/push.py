"""python -m train.push CHECKPOINT REPO_ID: upload a saved checkpoint to a Hub model repo.

    python -m train.push runs/genre/final someone/mango-genre [--private] [--token hf_...]

Uploads config.json, model.safetensors and a model card written from the checkpoint's config
(`mango.models.card`: task, data, test metrics, encoders and their licences). `python -m train
--push-to-hub REPO_ID` does the same at the end of a run; this pushes a run that was trained
without it, or whose push failed. Without network or a token it stops at once with the reason.
"""

from __future__ import annotations

import argparse
import sys

from mango.hub_env import push_unavailable_reason
from mango.models import MangoModel

from .cli import reports_user_errors


@reports_user_errors("python -m train.push")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.push", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoint folder (a run's final/ or best/)")
    p.add_argument("repo_id", help="the Hub model repo, owner/name (made if missing)")
    p.add_argument("--private", action="store_true", help="make the repo private when it is created")
    p.add_argument("--token", default=None, help="a Hub token (default: the one `hf auth login` stored, or HF_TOKEN)")
    p.add_argument("--revision", default=None, help="the branch to push to (default: main)")
    a = p.parse_args(argv)
    reason = push_unavailable_reason(a.repo_id, a.token)  # before the checkpoint is read
    if reason is not None:
        p.error(f"cannot push to {a.repo_id}: {reason}")
    model = MangoModel.from_pretrained(a.checkpoint)
    url = model.push_to_hub(a.repo_id, private=a.private or None, token=a.token, revision=a.revision)
    print(f"pushed {a.checkpoint} to {a.repo_id}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
