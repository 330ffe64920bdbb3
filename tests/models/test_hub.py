"""Checkpoints: save/load round trip, the Hub cache layout offline, and every error, fast."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mango.models import (
    FORMAT_VERSION,
    CheckpointError,
    CheckpointNotFoundError,
    ConfigVersionError,
    HubOfflineError,
    MangoConfig,
    MangoModel,
    TaskMismatchError,
)
from mango.models.hub import fetch_hub_snapshot, require_hub_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, MangoModel]:
    torch.manual_seed(0)
    config = MangoConfig.preset("demo", "genre", metadata={"data": "mmimdb-dev", "micro_f1": 0.5})
    model = MangoModel(config).eval()
    folder = tmp_path_factory.mktemp("ckpt") / "genre-demo"
    model.save_pretrained(folder)
    return folder, model


def same_outputs(left: MangoModel, right: MangoModel, make_inputs) -> None:
    batch = make_inputs(left.config, batch=2, seed=3)
    with torch.no_grad():
        x, y = left(batch["a"], batch["b"]), right(batch["a"], batch["b"])
    assert torch.equal(x.output, y.output) and torch.equal(x.log_prob, y.log_prob)


def install_in_hub_cache(home: Path, repo_id: str, folder: Path, files=("config.json", "model.safetensors")) -> Path:
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for name in files:
        shutil.copy(folder / name, snapshot / name)
    return snapshot


def test_save_then_load_gives_identical_outputs(saved, make_inputs) -> None:
    folder, model = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:  # weights only, no pickle
        assert f.metadata()["mango_format_version"] == str(FORMAT_VERSION)
    loaded = MangoModel.from_pretrained(folder, expected_task="genre")
    assert loaded.config == model.config and loaded.config.metadata["micro_f1"] == 0.5
    assert not loaded.training
    same_outputs(model, loaded, make_inputs)


def test_loads_from_the_hub_cache_offline(saved, offline_hub, make_inputs) -> None:
    folder, model = saved
    install_in_hub_cache(offline_hub, "mango-test/genre-demo", folder)
    start = time.perf_counter()
    by_branch = MangoModel.from_pretrained("mango-test/genre-demo")
    by_commit = MangoModel.from_pretrained("mango-test/genre-demo", revision=COMMIT)
    assert time.perf_counter() - start < 5.0
    same_outputs(model, by_branch, make_inputs)
    same_outputs(model, by_commit, make_inputs)


def test_offline_repo_not_in_cache_fails_fast(offline_hub) -> None:
    start = time.perf_counter()
    with pytest.raises(HubOfflineError, match="mango-test/absent.*HF_HUB_OFFLINE"):
        MangoModel.from_pretrained("mango-test/absent")
    assert time.perf_counter() - start < 1.0


def test_unreachable_hub_fails_fast_without_the_offline_switch(offline_hub, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    start = time.perf_counter()
    with pytest.raises(HubOfflineError, match="cannot be reached"):
        MangoModel.from_pretrained("mango-test/absent", revision="v1")
    with pytest.raises(HubOfflineError, match="push"):
        MangoModel(MangoConfig.preset("demo", "segmentation", num_blocks=1)).push_to_hub("mango-test/new")
    assert time.perf_counter() - start < 2.0


def test_a_hub_that_drops_the_download_fails_fast_with_the_endpoint(dropping_hub) -> None:
    start = time.perf_counter()
    with pytest.raises(HubOfflineError, match=f"cannot download .*mango-test/absent.* from {dropping_hub}"):
        MangoModel.from_pretrained("mango-test/absent")
    assert time.perf_counter() - start < 2.0


def test_missing_weights_in_the_hub_cache_are_named(saved, offline_hub) -> None:
    install_in_hub_cache(offline_hub, "mango-test/half", saved[0], files=("config.json",))
    with pytest.raises(HubOfflineError, match="model.safetensors"):
        MangoModel.from_pretrained("mango-test/half")


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_file_in_a_folder_is_named(saved, tmp_path, missing: str) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(saved[0], folder)
    (folder / missing).unlink()
    with pytest.raises(CheckpointNotFoundError, match=missing):
        MangoModel.from_pretrained(folder)


def test_no_such_folder(tmp_path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint folder"):
        MangoModel.from_pretrained(tmp_path / "nope")


def test_wrong_task_is_named(saved) -> None:
    with pytest.raises(TaskMismatchError, match="'genre'.*'segmentation'"):
        MangoModel.from_pretrained(saved[0], expected_task="segmentation")


def test_newer_format_version_is_named(saved, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(saved[0], folder)
    data = json.loads((folder / "config.json").read_text())
    data["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigVersionError, match="format_version 99"):
        MangoModel.from_pretrained(folder)


def test_weights_that_do_not_fit_the_config(saved, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(saved[0], folder)
    config = MangoConfig.load(folder / "config.json")
    config.num_blocks = 1
    config.save(folder / "config.json")
    with pytest.raises(CheckpointError, match="does not match config.json"):
        MangoModel.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MangoModel.from_pretrained(folder)


def test_a_format_2_checkpoint_from_before_the_whitening_layer_loads_and_computes_the_same() -> None:
    """Saved by commit 0e1823e (format 2, no `whitening` field: the layer did not exist yet), with
    its outputs on one input. Today's default is whitening on; the file must load as it was."""
    folder = Path(__file__).parent / "data" / "format2-before-whitening"
    assert "whitening" not in json.loads((folder / "config.json").read_text())
    model = MangoModel.from_pretrained(folder)
    assert model.config.whitening is False and model.flow.whitening is None
    expected = load_file(str(folder / "expected.safetensors"))
    with torch.no_grad():
        out = model(expected["rgb"], expected["depth"])
    torch.testing.assert_close(out.output, expected["output"])
    torch.testing.assert_close(out.log_prob, expected["log_prob"])


def test_weights_missing_a_tensor_are_refused(saved, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "ckpt"
    shutil.copytree(saved[0], folder)
    state = load_file(str(folder / "model.safetensors"))
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        MangoModel.from_pretrained(folder)


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def _config_only(home: Path, tmp_path: Path, repo_id: str) -> Path:
    """A snapshot in the Hub cache that holds config.json alone."""
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "files" / "config.json").write_text("{}")
    return install_in_hub_cache(home, repo_id, tmp_path / "files", files=("config.json",))


def test_a_partly_cached_snapshot_is_not_taken_as_whole(offline_hub, tmp_path) -> None:
    snapshot = _config_only(offline_hub, tmp_path, "someone/model")
    assert fetch_hub_snapshot("someone/model", ("config.json",), cached_only=True) == snapshot
    with pytest.raises(FileNotFoundError, match="not \\(wholly\\) in the Hugging Face cache"):
        fetch_hub_snapshot("someone/model", ("config.json", "model.safetensors"), cached_only=True)
    with pytest.raises(HubOfflineError, match="someone/model"):
        fetch_hub_snapshot("someone/model", ("config.json", "model.safetensors"))


def test_a_file_the_cache_knows_to_be_missing_is_not_cached(offline_hub, tmp_path) -> None:
    snapshot = _config_only(offline_hub, tmp_path, "someone/vit")
    no_exist = snapshot.parent.parent / ".no_exist" / COMMIT
    no_exist.mkdir(parents=True)
    (no_exist / "model.safetensors").write_text("")  # huggingface_hub's record of a 404
    require_hub_file("someone/vit", "config.json", what="weights")  # cached: passes
    with pytest.raises(HubOfflineError, match="someone/vit"):
        require_hub_file("someone/vit", "model.safetensors", what="weights")
