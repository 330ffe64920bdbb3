"""A launched app for the client and browser tests: one per session, on a free localhost port.

It runs on whatever each slot would load (the bundled checkpoints when they exist, else the
untrained demo models), so the checks look at the shape and sense of outputs, not their accuracy.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def temporary_files_in_the_session_s_folder(tmp_path_factory):
    """gradio_client stages every file it downloads in a new folder of its own under the system's temporary
    folder, and leaves it there empty (about 60 a run of test_client.py). Here they land in pytest's own
    temporary folder, which pytest prunes."""
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tmp"))
    try:
        yield
    finally:
        tempfile.tempdir = before


@pytest.fixture(scope="session", autouse=True)
def app_log_at_info():
    """The app's INFO lines (a press refused, a user error) reach pytest's capture: a test that fails says
    what the server did meanwhile."""
    import logging

    logger = logging.getLogger("mango.app")
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(before)


@pytest.fixture(scope="session")
def launched_app():
    """(demo, url) of the running app; closed at the end of the session."""
    import torch

    from app.ui import build_demo, launch_kwargs

    threads = torch.get_num_threads()  # build_demo sets the app's own; other tests get theirs back
    demo = build_demo()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def client(launched_app, tmp_path_factory):
    from gradio_client import Client

    downloads = tmp_path_factory.mktemp("client-downloads")
    return Client(launched_app[1], verbose=False, download_files=str(downloads), analytics_enabled=False)


@pytest.fixture(scope="session")
def scene():
    from app.examples import scenes

    found = scenes()
    if not found:
        pytest.skip("assets/examples/synthrooms is empty: run `python -m app.examples`")
    return found[0]


@pytest.fixture(scope="session")
def other_scene():
    from app.examples import scenes

    return scenes()[1]


@pytest.fixture(scope="session")
def film():
    from app.examples import films

    found = films()
    if not found:
        pytest.skip("assets/examples/films is empty: run `python -m app.examples`")
    return found[0]


@pytest.fixture
def bad_files(tmp_path: Path):
    """Inputs a user might upload by mistake, made on the fly."""
    import numpy as np
    from PIL import Image

    files = {}
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    files["not_image"] = str(text)
    rgb_depth = tmp_path / "depth_rgb.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(rgb_depth)
    files["colour_depth"] = str(rgb_depth)
    small = tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 255, (100, 150, 3), dtype=np.uint8)).save(small)
    files["small_rgb"] = str(small)
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 5000), 128).save(huge)  # compresses to a few kB, but 25 megapixels
    files["huge"] = str(huge)
    return files


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that fails says which components show gradio's "Error" mark (its module's
    ``error_marks``), and leaves a screenshot in MANGO_SCREENSHOT_DIR (when set): a failure under load
    can be read afterwards."""
    report = yield
    folder = os.environ.get("MANGO_SCREENSHOT_DIR")
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and page is not None:
        try:
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(folder) / f"FAILED-{item.name}.png"), full_page=True)
            marks = getattr(item.module, "error_marks", None)
            if marks is not None:
                report.sections.append(("page", f"'Error' marks, on these components: {marks(page)}"))
        except Exception as error:  # the page may be gone with the failure
            report.sections.append(("page", f"no screenshot: {error}"))
    return report
