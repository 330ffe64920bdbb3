"""Every command the README, app/README.md, docs/ and the module docstrings show still parses, and
every repository path they name exists.

A renamed or removed option leaves a reproduce command that stops at its first word, and nobody
finds out until someone copies it. Each command is handed to its module's own argument parser and
stopped right after parsing (nothing is trained, loaded or written); `python -m train` also builds
its training config, which refuses settings that would fail later (``check_settings``).
Usage lines (``[--split val]``, ``{flow,model,...}``), elided ones (``...``) and bare mentions of a
command with no arguments are not commands to run, and are left out.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", REPO / "app" / "README.md", *sorted((REPO / "docs").glob("*.md")),
             # module docstrings: what `--help` and a reader of the code see
             REPO / "app.py", *sorted(p for folder in ("app", "mango", "train") for p in (REPO / folder).rglob("*.py"))]
# `python -m MODULE`, `torchrun ... -m MODULE` or `python app.py`, up to the end of the line or code span
START = re.compile(r"(?:python|torchrun[^\n`]*?) (?:-m (?P<module>[\w.]+)|(?P<script>app\.py))")
PROJECT = ("train", "mango", "app")
STOPS = ("|", "&&", ";", ">", "2>&1")


def _snippets(path: Path) -> list[str]:
    """Lines of fenced code blocks (comments dropped) and inline code spans (line breaks joined); in a
    module docstring, its indented example lines (its code spans name options in passing)."""
    text = path.read_text()
    if path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text)) or ""
        return [re.split(r"\s#\s", line)[0] for line in doc.splitlines() if line.startswith("  ")]
    found = []
    for block in re.findall(r"```[\w-]*\n(.*?)```", text, flags=re.S):
        found += [re.split(r"\s#\s", line)[0] for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"```[\w-]*\n.*?```", "", text, flags=re.S)
    return found + [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(where, module or "app.py", argv) of every runnable project command in the documents."""
    commands = []
    for path in DOCUMENTS:
        for snippet in _snippets(path):
            match = START.search(snippet)
            if not match:
                continue
            target = match["module"] or match["script"]
            if match["module"] and target.split(".")[0] not in PROJECT:
                continue  # pytest, pip
            argv = shlex.split(snippet[match.end():])
            for stop in STOPS:
                argv = argv[:argv.index(stop)] if stop in argv else argv
            usage = any(t.startswith(("[", "{", "<")) or "[@" in t or t == "..." for t in argv)
            if not usage and (argv or target == "app.py"):  # `python app.py` alone runs; `python -m train` alone is a mention
                commands.append((path.relative_to(REPO).as_posix(), target, argv))
    return commands


class _Parsed(BaseException):
    """Raised once a command's arguments have parsed: nothing after parsing runs."""


@pytest.fixture
def stop_after_parsing(monkeypatch):
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    return parse


def _parse_train(argv: list[str], parse) -> None:
    """`python -m train`'s arguments, through to its training config and settings check."""
    import train.__main__ as train_main

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", parse)
        train_main.parse_args(argv)


COMMANDS = documented_commands()


def test_the_documents_show_commands_of_every_entry_point():
    targets = {target for _, target, _ in COMMANDS}
    assert {"train", "train.evaluate", "train.transfer", "train.crossval", "train.ablations", "train.push",
            "mango.bench", "mango.data.synthrooms", "app.publish", "app.py"} <= targets
    assert len(COMMANDS) >= 60


def _entry_point(target: str):
    """The function a documented command runs first: its module's main, or app.py's parse_args."""
    if target == "app.py":
        spec = importlib.util.spec_from_file_location("mango_app_entry", REPO / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.parse_args
    # `python -m mango.bench NAME` dispatches from its __main__
    return importlib.import_module(f"{target}.__main__" if target == "mango.bench" else target).main


@pytest.mark.parametrize("where, target, argv", COMMANDS, ids=[f"{w}:{t}:{i}" for i, (w, t, _) in enumerate(COMMANDS)])
def test_a_documented_command_parses(where, target, argv, stop_after_parsing, capsys):
    try:
        if target == "train":
            _parse_train(argv, stop_after_parsing)
            return
        _entry_point(target)(argv)
    except _Parsed as parsed:
        if target == "train.crossval":  # its `--` part is a `python -m train` command
            rest = parsed.args[0].train_args
            _parse_train(rest[1:] if rest[:1] == ["--"] else rest, stop_after_parsing)
        return
    except SystemExit as stop:
        error = capsys.readouterr().err.strip().splitlines()[-1:]
        pytest.fail(f"{where}: `{target} {shlex.join(argv)}` stopped (exit {stop.code}): {' '.join(error)}")
    pytest.fail(f"{where}: `{target} {shlex.join(argv)}` never parsed its arguments")


def test_every_repository_path_the_documents_name_exists():
    """`mango/text_coverage.py`, `assets/explanations/`: a file moved or renamed leaves a dead pointer."""
    named = set()
    for path in DOCUMENTS:
        for span in re.findall(r"`+([^`\n]+)`+", path.read_text()):
            for token in span.split():
                token = token.strip(".,;:()")
                placeholder = any(re.fullmatch(r"[A-Z_]+", part) for part in token.split("/"))  # NAME, RUN
                if re.fullmatch(r"(?:mango|app|train|assets|docs|tests)/[\w./-]*", token) and not placeholder:
                    named.add((path.relative_to(REPO).as_posix(), token.rstrip("/")))
    assert len(named) >= 40
    missing = sorted((where, token) for where, token in named if not (REPO / token).exists())
    assert not missing, missing
