"""Publish the app as a Hugging Face Space: ``python -m app.publish OWNER/NAME [--dry-run]``.

The Space gets only what it runs: ``app.py``, ``app/``, ``mango/``, ``assets/`` (the bundled
checkpoints and examples), ``README.md`` (its front matter configures the Space), the ``LICENSE``
its code travels under, and a ``requirements.txt``. No tests, no ``train/``, no data, no runs.

Why the Space's requirements.txt is generated: a Space runs ``pip install -r requirements.txt``
before it copies the repository in, so the repository's own requirements.txt (``-e .[app]``)
cannot install there. The Space gets the flat list that line stands for: the library's and the
``[app]`` dependencies from ``pyproject.toml``, where versions are declared once.

Weights: the bundled checkpoints (8-17 MB each) travel in ``assets/``; ``upload_folder`` stores
large and binary files through LFS/Xet, which a plain ``git push`` to a Space does not do. The
pretrained encoder weights come from pip packages in the requirements, not from the Hub.

``--dry-run`` lists the files and their sizes and checks the README's front matter, offline. A real
publish needs the Hub: without it, it fails at once, before anything is created.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "mango-flow"  # pyproject.toml's [project] name
# What the Space runs; patterns as upload_folder reads them (fnmatch on paths relative to the root).
SPACE_PATTERNS = ["app.py", "app/**", "mango/**", "assets/**", "docs/**", "README.md", "LICENSE"]
IGNORE_PATTERNS = ["**/__pycache__/**", "*.pyc", "*.pyi", "**/.DS_Store", "**/*.part", "**/*.tmp"]
# Folders the project owns on the Space: files deleted here are deleted there on the next publish.
OWNED_FOLDERS = ["app/**", "mango/**", "assets/**", "docs/**"]
GENERATED_REQUIREMENTS = "requirements.txt"
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub takes no larger file outside LFS/Xet
SDK_PACKAGES = {"gradio", "gradio-client"}  # installed on a Space by its sdk_version, never pinned here
# PyTorch's index of CPU-only wheels. From PyPI a Space on CPU hardware gets the CUDA build: its nvidia-*
# wheels made a 6.4 GB environment, for no use. An extra index, not the only one: its 2.14.1+cpu sorts above
# PyPI's 2.14.1 and meets the same ==2.14.1 pin, so pip takes it, and falls back to PyPI's where it has none.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


class PublishError(Exception):
    """Publishing cannot go ahead; the message says why and what to do."""


@dataclass
class SpaceFile:
    path: str  # in the Space repo
    size: int
    source: Path | None  # None: generated (requirements.txt)


@dataclass
class SpacePlan:
    """What a publish would upload, and what is wrong with it."""

    files: list[SpaceFile]
    requirements: str
    front_matter: dict
    problems: list[str] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


# ---------------------------------------------------------------------- what goes up
def _load_pyproject(root: Path) -> dict:
    try:
        import tomllib
    except ImportError as err:  # Python 3.10
        raise PublishError("publishing reads pyproject.toml with tomllib: run it with Python 3.11 or newer") from err
    path = root / "pyproject.toml"
    if not path.is_file():
        raise PublishError(f"{path} not found: the Space's requirements are made from it")
    return tomllib.loads(path.read_text())


def space_requirements(root: Path = REPO_ROOT, installed: Callable[[str], str | None] | None = None,
                       cpu_torch: bool = True) -> str:
    """The Space's requirements.txt: the library's and the [app] extra's dependencies, flat, each pinned
    to the version ``installed`` here (default: this environment's) when that meets pyproject's bound, so
    a rebuild of the Space installs what ran here, not whatever is newest. gradio and its client stay
    as declared: the Space installs the front matter's sdk_version itself. ``cpu_torch``: torch from
    CPU_TORCH_INDEX (a Space on GPU hardware wants it off)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    installed = installed or _installed_version
    project = _load_pyproject(root)["project"]
    lines = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("app", [])]
    lines = [r for r in dict.fromkeys(lines) if not r.replace("_", "-").lower().startswith(DISTRIBUTION)]
    pinned = []
    for line in lines:
        req = Requirement(line)
        version = None if canonicalize_name(req.name) in SDK_PACKAGES else installed(req.name)
        if version is not None and req.specifier.contains(version, prereleases=True):
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            line = f"{req.name}{extras}=={version}" + (f"; {req.marker}" if req.marker else "")
        pinned.append(line)
    header = ("# Generated by `python -m app.publish` from pyproject.toml (the library and its [app] extra),\n"
              "# pinned to the versions installed where it ran. Edit pyproject.toml, not this file.\n")
    if cpu_torch:
        header += ("# torch and torchvision come from PyTorch's CPU-only wheels: the CUDA build is of no use on CPU\n"
                    "# hardware (`python -m app.publish --cuda-torch` leaves this line out, for a GPU Space).\n"
                    f"--extra-index-url {CPU_TORCH_INDEX}\n")
    return header + "".join(f"{r}\n" for r in pinned)


def _installed_version(name: str) -> str | None:
    """The public version of an installed distribution (a local tag such as +cpu is not on PyPI)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        return Version(version(name)).public
    except PackageNotFoundError:
        return None


def space_files(root: Path = REPO_ROOT, cpu_torch: bool = True) -> list[SpaceFile]:
    """The files of `root` that go to the Space, sorted, plus the generated requirements.txt."""
    from huggingface_hub.utils import filter_repo_objects

    candidates: dict[str, Path] = {}
    for top in {pattern.split("/")[0] for pattern in SPACE_PATTERNS}:  # never walk .git, .venv, data, runs
        path = root / top
        found = sorted(path.rglob("*")) if path.is_dir() else [path] if path.is_file() else []
        candidates.update({p.relative_to(root).as_posix(): p for p in found if p.is_file()})
    chosen = filter_repo_objects(sorted(candidates), allow_patterns=SPACE_PATTERNS, ignore_patterns=IGNORE_PATTERNS)
    files = [SpaceFile(rel, candidates[rel].stat().st_size, candidates[rel]) for rel in chosen]
    requirements = space_requirements(root, cpu_torch=cpu_torch)
    files.append(SpaceFile(GENERATED_REQUIREMENTS, len(requirements.encode()), None))
    return sorted(files, key=lambda f: f.path)


def check_front_matter(root: Path, paths: set[str], requirements: str) -> tuple[dict, list[str]]:
    """Parse README.md's front matter with huggingface_hub's SpaceCard; return it and what is wrong with it."""
    from huggingface_hub import SpaceCard
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet

    readme = root / "README.md"
    if not readme.is_file():
        return {}, ["README.md not found: its front matter is the Space's configuration"]
    try:
        data = SpaceCard.load(readme).data.to_dict()
    except Exception as err:  # huggingface_hub raises ValueError, yaml its own errors
        return {}, [f"README.md front matter cannot be parsed: {err}"]
    problems = []
    if not data:
        return {}, ["README.md has no front matter (a '---' YAML block at the top)"]
    if not data.get("title"):
        problems.append("front matter: no 'title'")
    if data.get("sdk") != "gradio":
        problems.append(f"front matter: sdk is {data.get('sdk')!r}; this app needs 'gradio'")
    app_file = data.get("app_file", "app.py")
    if app_file not in paths:
        problems.append(f"front matter: app_file {app_file!r} is not among the uploaded files")
    for key in ("colorFrom", "colorTo"):
        if key in data and data[key] not in SPACE_COLORS:
            problems.append(f"front matter: {key} {data[key]!r} is not one of {sorted(SPACE_COLORS)}")
    if len(str(data.get("short_description", ""))) > 60:
        problems.append("front matter: short_description is longer than 60 characters")
    requirements_by_name = {}
    for line in requirements.splitlines():
        if line.strip() and not line.startswith(("#", "--extra-index-url ")):
            try:
                req = Requirement(line)
            except InvalidRequirement as err:
                problems.append(f"requirements: {line!r} is not a requirement ({err})")
                continue
            requirements_by_name[req.name.lower()] = req
    version, gradio = data.get("sdk_version"), requirements_by_name.get("gradio")
    if not version:
        problems.append("front matter: no sdk_version (the gradio version the Space installs)")
    elif gradio is None:
        problems.append("requirements: no gradio among pyproject.toml's [app] dependencies")
    elif not gradio.specifier.contains(str(version), prereleases=True):
        problems.append(f"front matter: sdk_version {version} is outside the app's gradio{gradio.specifier}")
    python = data.get("python_version")
    requires = _load_pyproject(root)["project"].get("requires-python")
    if python and requires and not SpecifierSet(requires).contains(f"{python}.0" if str(python).count(".") == 1
                                                                   else str(python)):
        unquoted = " (YAML reads an unquoted 3.10 as the number 3.1: quote it, '3.10')" if isinstance(python, float) else ""
        problems.append(f"front matter: python_version {python} is outside pyproject's requires-python {requires}"
                        f"{unquoted}")
    return data, problems


def plan(root: Path = REPO_ROOT, cpu_torch: bool = True) -> SpacePlan:
    files = space_files(root, cpu_torch)
    requirements = space_requirements(root, cpu_torch=cpu_torch)
    front_matter, problems = check_front_matter(root, {f.path for f in files}, requirements)
    return SpacePlan(files, requirements, front_matter, problems)


# ---------------------------------------------------------------------- report
def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def describe(space: SpacePlan, repo_id: str) -> str:
    lines = [f"Space {repo_id}: {len(space.files)} files, {_size(space.total_size)}"]
    for f in space.files:
        note = "  (generated from pyproject.toml)" if f.source is None else \
            "  (over 10 MiB = 10.49 MB: LFS/Xet only)" if f.size > LFS_THRESHOLD else ""
        lines.append(f"  {_size(f.size):>9}  {f.path}{note}")
    lines.append(f"  {_size(space.total_size):>9}  total")
    lines.append(f"{GENERATED_REQUIREMENTS} (generated from pyproject.toml, what the Space installs):")
    lines += [f"  {line}" for line in space.requirements.splitlines() if line.strip()]
    fm = space.front_matter
    if space.problems:
        lines.append("README.md front matter / requirements: NOT VALID")
        lines += [f"  - {p}" for p in space.problems]
    else:
        lines.append(f"README.md front matter: valid (sdk {fm.get('sdk')} {fm.get('sdk_version')}, "
                     f"app_file {fm.get('app_file', 'app.py')}, title {fm.get('title')!r})")
    return "\n".join(lines)


# ---------------------------------------------------------------------- upload
def _stage(space: SpacePlan, folder: Path) -> None:
    """Lay the Space's files out in `folder`: hard links where the file system allows, else copies."""
    for f in space.files:
        target = folder / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.source is None:
            target.write_text(space.requirements)
            continue
        try:
            os.link(f.source, target)
        except OSError:
            shutil.copy2(f.source, target)


def publish(repo_id: str, root: Path = REPO_ROOT, private: bool = False, token: str | None = None,
            message: str = "Publish the MANGO app", cpu_torch: bool = True) -> str:
    """Create the Space if needed and upload the app in one commit; returns the Space's URL."""
    from huggingface_hub import HfApi, get_token

    from mango.hub_env import hub_endpoint, hub_unavailable_reason

    space = plan(root, cpu_torch)
    if space.problems:
        raise PublishError("not publishing, fix these first:\n" + "\n".join(f"  - {p}" for p in space.problems))
    reason = hub_unavailable_reason()
    if reason is not None:
        raise PublishError(f"cannot publish to Space {repo_id}: {reason}. "
                           f"`python -m app.publish {repo_id} --dry-run` checks everything that can be checked offline.")
    if token is None and get_token() is None:
        raise PublishError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
    api = HfApi(endpoint=hub_endpoint(), token=token)
    repo = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mango-space-") as tmp:
        _stage(space, Path(tmp))
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=tmp, commit_message=message,
                          allow_patterns=SPACE_PATTERNS + [GENERATED_REQUIREMENTS], ignore_patterns=IGNORE_PATTERNS,
                          delete_patterns=OWNED_FOLDERS)
    return str(getattr(repo, "url", f"{hub_endpoint()}/spaces/{repo_id}"))


# ---------------------------------------------------------------------- command line
def _repo_id(text: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if text.count("/") != 1:
        raise argparse.ArgumentTypeError(f"a Space is named OWNER/NAME, got {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.publish",
                                     description="Publish the MANGO app as a Hugging Face Space (gradio SDK).",
                                     epilog="Without --dry-run it needs the Hub and a token (hf auth login or HF_TOKEN).")
    parser.add_argument("repo_id", type=_repo_id, metavar="OWNER/NAME", help="the Space to create or update")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded and check it; upload nothing")
    parser.add_argument("--private", action="store_true", help="create the Space private (an existing one is unchanged)")
    parser.add_argument("--token", default=None, help="Hugging Face token (default: the logged-in one)")
    parser.add_argument("--message", default="Publish the MANGO app", help="commit message")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project folder (default: this checkout)")
    parser.add_argument("--cuda-torch", action="store_true",
                        help="install PyPI's torch (CUDA) on the Space, for GPU hardware; default: PyTorch's CPU wheels")
    args = parser.parse_args(argv)
    try:
        if args.dry_run:
            space = plan(args.root, not args.cuda_torch)
            print(describe(space, args.repo_id))
            print("Dry run: nothing was uploaded.")
            return 1 if space.problems else 0
        url = publish(args.repo_id, root=args.root, private=args.private, token=args.token, message=args.message,
                      cpu_torch=not args.cuda_torch)
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Published: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
