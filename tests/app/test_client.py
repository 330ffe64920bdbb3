"""The launched app through gradio_client: every endpoint on the project's examples, bad inputs, and
several clients at once. Works on the bundled checkpoints or, without them, the untrained fallbacks."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError, ValidationError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAYER = "block 1 · layer 1 · MMCA A→B"
DOCUMENTED = {
    f"/{prefix}{suffix}"
    for prefix in ("segment", "translate", "genre")
    for suffix in ("", "_attention", "_targets", "_contributions", "_sample", "_resample", "_interpolate")
} | {"/translate_setting", "/ablations", "/segment_known_answer"}


def plotly(value) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def image_size(path) -> tuple[int, int]:
    path = path["path"] if isinstance(path, dict) else path  # the client downloads files to paths
    with Image.open(path) as image:
        return image.size


def files_in_repo() -> set[str]:
    found = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in {".git", "__pycache__", ".pytest_cache", "bench_results"}]
        found |= {os.path.join(root, f) for f in files}
    return found


def test_every_documented_endpoint_has_its_name(client):
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert DOCUMENTED <= named, DOCUMENTED - named
    assert not any(re.search(r"_\d+$", name) for name in named), named  # no auto-renamed duplicates


def test_readme_lists_every_documented_endpoint():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| endpoint | parameters | returns |"):]
    table = table[: table.index("\n\n")]
    assert not [name for name in DOCUMENTED if f"`{name}`" not in table]


def test_segmentation_endpoints(client, scene, other_scene):
    before = files_in_repo()
    rgb, depth = handle_file(scene.file("rgb")), handle_file(scene.file("depth"))
    overlay, shares, notices = client.predict(rgb, depth, api_name="/segment")
    assert image_size(overlay["image"]) == image_size(scene.file("rgb"))
    labels = [a["label"] for a in overlay["annotations"]]
    assert labels and len(labels) == len(set(labels))
    assert abs(sum(float(row[1].lstrip("<>")) for row in shares["data"]) - 100) < 1.0
    assert [row[0] for row in shares["data"]] == labels  # table and legend agree, largest first
    assert "resized" in notices

    picker, attention, rollout, matrices, text = client.predict(rgb, depth, LAYER, "rgb", 27, api_name="/segment_attention")
    assert image_size(picker) == (2 * 256 + 16, 256 + 22)
    fig = plotly(attention)
    assert "picked rgb (row 3, col 3) (the query)<br>" in fig["layout"]["title"]["text"]
    assert "row 27: query rgb (row 3, col 3) → mix into depth (row 3, col 3)" in fig["layout"]["title"]["text"]
    assert [a["text"] for a in fig["layout"]["annotations"]][:2] == ["rgb", "depth"]
    assert "Rollout through all" in plotly(rollout)["layout"]["title"]["text"]
    assert len(plotly(matrices)["data"]) == 2 and "Row 27 of MMCA A→B" in text

    targets = client.predict(rgb, depth, api_name="/segment_targets")
    assert {c[1] for c in targets["choices"]} >= set(labels)
    bars, ig, likelihood, summary = client.predict(rgb, depth, labels[0], 8, api_name="/segment_contributions")
    bar_fig = plotly(bars)
    shapley = bar_fig["data"][0]["x"]
    stated = re.search(r"f\(both\) = (-?[\d.]+) · f\(none\) = (-?[\d.]+)", bar_fig["layout"]["title"]["text"])
    assert abs(sum(shapley) - (float(stated[1]) - float(stated[2]))) < 2e-3  # efficiency, through the UI
    ig_layout = plotly(ig)["layout"]  # the map, or (not converged at 8 steps) a notice instead of it
    assert "convergence delta" in ig_layout.get("title", {}).get("text", "") + str(ig_layout.get("annotations", ""))
    assert len(plotly(likelihood)["data"][0]["x"]) == 2 and "Shapley" in summary

    outlined, verdict = client.predict("a camouflaged object (only depth shows it), scene 1",
                                       api_name="/segment_known_answer")
    assert image_size(outlined)[1] == 256 and "only **depth** can reveal it" in verdict and "Shapley values" in verdict
    assert "the outline stops where something stands in front of it" in verdict  # a rug behind a camouflaged box

    strip, readout = client.predict(0.7, 3, 2, api_name="/segment_sample")
    assert image_size(strip)[1] > 2 * 160 and "bits/dim" in readout and "Round-trip error" in readout
    strip, readout = client.predict(rgb, depth, "rgb", 0.5, 1, 2, api_name="/segment_resample")
    assert "Kept the rgb latent tokens" in readout and "input:" in readout
    strip, readout = client.predict(rgb, depth, other_scene.name, 3, api_name="/segment_interpolate")
    assert "t = 0.50" in readout and f"from the current input (t = 0) to {other_scene.name} (t = 1)" in readout
    assert "t = 0 is the decoders' picture of the input, not the upload itself" in readout
    assert files_in_repo() == before  # nothing written into the repository


def test_translation_endpoints(client, scene):
    for setting, (first, second), labels in [
        ("shade + texture → rgb", ("reshading", "edge_texture"), ("shade", "texture")),
        ("depth + normal → rgb", ("depth_zbuffer", "normal"), ("depth", "normal")),
    ]:
        updates = client.predict(setting, api_name="/translate_setting")
        assert updates[4]["choices"] == [[labels[0], labels[0]], [labels[1], labels[1]]]
        last = updates[7]["maximum"]  # the query slider follows this setting's token grid
        assert 0 <= updates[7]["value"] <= last
        a, b = handle_file(scene.file(first)), handle_file(scene.file(second))
        image, notices = client.predict(setting, a, b, api_name="/translate")
        assert image_size(image) == (256, 256)
        arr = np.asarray(Image.open(image))
        assert arr.shape == (256, 256, 3)
        *_, text = client.predict(setting, a, b, LAYER, labels[1], 5, api_name="/translate_attention")
        assert "MMCA A→B" in text
        *_, text = client.predict(setting, a, b, LAYER, labels[1], last, api_name="/translate_attention")
        assert "MMCA A→B" in text
        with pytest.raises(AppError, match="query token index must be"):
            client.predict(setting, a, b, LAYER, labels[1], last + 1, api_name="/translate_attention")
    bars, ig, likelihood, summary = client.predict(setting, a, b, "red channel", 8, api_name="/translate_contributions")
    assert "red channel of the predicted rgb" in summary
    strip, readout = client.predict(setting, 0.7, 0, 1, api_name="/translate_sample")
    assert "sample 1" in readout


def test_genre_endpoints(client, film):
    poster = handle_file(film.poster)
    chart, genres, notices = client.predict(poster, film.plot, api_name="/genre")
    fig = plotly(chart)
    probs = fig["data"][0]["x"]
    assert len(probs) == 23 and all(0 <= p <= 1 for p in probs) and probs == sorted(probs, reverse=True)
    assert genres
    *_, text, words = client.predict(poster, film.plot, LAYER, "plot", 2, api_name="/genre_attention")
    tokens = [w["token"].strip() for w in words]
    assert tokens[0] == "⟨start⟩" and [w["class_or_confidence"] for w in words][2] == "query"
    assert "plot token 2" in text
    bars, ig, likelihood, summary = client.predict(poster, film.plot, "Drama", 8, api_name="/genre_contributions")
    assert "genre Drama" in summary and len(plotly(ig)["data"]) >= 3
    strip, readout = client.predict(0.7, 0, 2, api_name="/genre_sample")
    assert "no decoder" in readout
    strip, readout = client.predict(poster, film.plot, "poster", 0.7, 0, 2, api_name="/genre_resample")
    assert "redrew the plot" in readout


def test_ablations_endpoint(client):
    explanation, status, table, image = client.predict(api_name="/ablations")
    assert ("not been run yet" in explanation) == ("not run yet" in status)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not an image", "not an image file"),
        ("colour depth", "single-channel"),
        ("huge", "the limit is 4096 pixels"),
        ("bad layer", "Unknown layer 'block 9 · layer 9'"),
        ("bad query", "The query token index must be a whole number from 0 to 63; got 64."),
    ],
)
def test_bad_segmentation_inputs_get_a_clear_message(client, scene, bad_files, case, message):
    rgb, depth = handle_file(scene.file("rgb")), handle_file(scene.file("depth"))
    calls = {
        "not an image": ((rgb, handle_file(bad_files["not_image"])), "/segment"),
        "colour depth": ((rgb, handle_file(bad_files["colour_depth"])), "/segment"),
        "huge": ((handle_file(bad_files["huge"]), depth), "/segment"),
        "bad layer": ((rgb, depth, "block 9 · layer 9", "rgb", 0), "/segment_attention"),
        "bad query": ((rgb, depth, LAYER, "rgb", 64), "/segment_attention"),
    }
    args, api_name = calls[case]
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=api_name)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize("args, messages", [
    ((True, False), ["- b: The depth is missing: upload one, or click an example."]),
    ((False, False), ["- a: The RGB image is missing", "- b: The depth is missing"]),
], ids=["missing depth", "missing both"])
def test_a_prediction_with_an_empty_slot_is_refused_before_it_queues(client, scene, args, messages):
    files = [handle_file(scene.file(m)) if given else None for m, given in zip(("rgb", "depth"), args)]
    with pytest.raises(ValidationError) as err:  # the button's own check, which the page shows beside each slot
        client.predict(*files, api_name="/segment")
    assert all(message in str(err.value) for message in messages)
    assert f"{len(messages)} parameter(s) failed validation" in str(err.value)


def test_an_empty_translation_is_refused_before_it_queues(client):
    with pytest.raises(ValidationError, match="- a: The shade is missing"):
        client.predict("shade + texture → rgb", None, None, api_name="/translate")


def test_fixable_inputs_are_fixed_with_a_notice(client, scene, bad_files):
    _, _, notices = client.predict(handle_file(bad_files["small_rgb"]), handle_file(scene.file("depth")), api_name="/segment")
    assert "150×100 but the depth is 256×256" in notices


@pytest.mark.parametrize("plot, message", [  # the button's own check says these, before the prediction queues
    ("", "- b: The plot is empty"),
    ("word " * 1500, "- b: The plot is 7,499 characters long; the limit is 3,000"),
    ("Cats.", "- b: The plot has 1 word; it needs at least 3"),
], ids=["empty", "very long", "one word"])
def test_bad_plots_get_a_clear_message(client, film, plot, message):
    with pytest.raises(ValidationError, match=message):
        client.predict(handle_file(film.poster), plot, api_name="/genre")


def test_uploads_are_size_limited(client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(21 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(str(big)), "A plot about a big file.", api_name="/genre")


def test_several_clients_at_once_are_all_served(launched_app, scene, film, tmp_path):
    url = launched_app[1]
    clients = [Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False) for _ in range(3)]
    rgb, depth = handle_file(scene.file("rgb")), handle_file(scene.file("depth"))
    jobs = []
    for k, c in enumerate(clients):
        jobs.append(c.submit(rgb, depth, api_name="/segment"))
        jobs.append(c.submit(handle_file(film.poster), film.plot, api_name="/genre"))
        jobs.append(c.submit(0.7, k, 2, api_name="/segment_sample"))
        jobs.append(c.submit(rgb, depth, LAYER, "depth", k, api_name="/segment_attention"))
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job.result(timeout=120), jobs))
    assert len(results) == 12 and all(r is not None for r in results)
