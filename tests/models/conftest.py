"""Helpers for the model tests: demo-preset models and matching random inputs."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
import torch

from mango.models import MangoConfig, MangoModel

TASKS = ("segmentation", "translation", "genre")
PLOTS = [
    "A retired detective returns for one last case in a city that has forgotten him.",
    "Two sisters open a bakery.",
    "In the far future, a crew of miners finds a signal on a dead moon and follows it home.",
]


def make_batch(config: MangoConfig, batch: int = 2, seed: int = 0) -> dict[str, Any]:
    """A dataset-contract batch: images in [0, 1], text as strings, the task's target."""
    gen = torch.Generator().manual_seed(seed)
    size = config.image_size

    def modality(key: str) -> Any:
        m = config.modality(key)
        if m.is_text:
            return [PLOTS[i % len(PLOTS)] for i in range(batch)]
        return torch.rand(batch, m.channels, size, size, generator=gen)

    if config.task == "segmentation":
        target = torch.randint(0, config.num_classes, (batch, size, size), generator=gen)
        target[:, :4] = 255
    elif config.task == "translation":
        assert config.target is not None
        target = torch.rand(batch, config.target.channels, size, size, generator=gen)
    else:
        target = (torch.rand(batch, config.num_classes, generator=gen) < 0.2).float()
    return {"a": modality("a"), "b": modality("b"), "target": target, "id": [str(i) for i in range(batch)]}


def build(task: str, seed: int = 0, **overrides: Any) -> MangoModel:
    torch.manual_seed(seed)
    return MangoModel(MangoConfig.preset("demo", task, **overrides))


@pytest.fixture(scope="session")
def make_inputs():
    """`make_inputs(config, batch=2, seed=0)` -> a batch dict in the data layer's contract."""
    return make_batch


@pytest.fixture(scope="session")
def demo_model():
    """`demo_model(task, seed=0, **overrides)` -> a fresh MangoModel at the demo preset."""
    return build


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face home with the offline switch on (read at call time by mango)."""
    home = tmp_path / "hf_home"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def dropping_hub(tmp_path, monkeypatch):
    """A Hub endpoint that accepts the TCP probe and then drops every request (a proxy or captive
    portal does this), with an empty cache and the offline switch off."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    home = tmp_path / "hf_home"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    yield endpoint
    server.close()


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    """These models are tiny: one thread is as fast, and far steadier on a shared 2-core box
    (two spinning OpenMP threads against other processes slow small ops down many times)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
