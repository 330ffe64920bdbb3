"""The attention view's words: one honest sentence per ICA layer on how much it mixes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from app.attention_view import layer_mixing_text, mixing_sentence
from app.handlers import Runner

GENRES = ("Drama", "Comedy", "Horror", "Romance")


@pytest.mark.parametrize(
    "share, kept, taken, verdict",
    [
        (0.0009, "over 99.9 %", "under 0.1 %", "it barely mixes (close to the identity)"),
        (0.03, "97.0 %", "3.0 %", "it mixes a little"),
        (0.2, "80 %", "20 %", "it mixes moderately"),
        (0.55, "45 %", "55 %", "it mixes strongly"),
    ],
)
def test_one_sentence_says_how_much_a_layer_mixes(share, kept, taken, verdict):
    sentence = mixing_sentence(share)
    assert f"keeps {kept} of its own content and takes {taken} from other tokens: {verdict}." in sentence


def test_every_layer_gets_a_line_and_the_selected_one_is_spelled_out():
    names = ["block 1 · layer 1 · MMCA A→B", "block 1 · layer 2 · MMCA B→A", "block 2 · layer 1 · LICA 1"]
    text = layer_mixing_text(names, [0.001, 0.25, 0.6], selected=1)
    assert "**This layer (block 1 · layer 2 · MMCA B→A):** each token it updates keeps 75 %" in text
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 3 and lines[1].startswith("- **")  # the selected layer in bold
    assert "barely mixes" in lines[0] and "mixes strongly" in lines[2]
    assert "mean 28 % from other tokens" in text


def test_layers_with_a_value_affine_say_what_the_shares_leave_out():
    names = ["block 1 · layer 1 · MMCA A→B"]
    assert "scale and shift" not in layer_mixing_text(names, [0.001])
    text = layer_mixing_text(names, [0.001], value_affine=True)
    assert "barely mixes" in text and "scale and shift" in text and "same position" in text


def test_with_s_over_earlier_tokens_the_note_does_not_promise_the_paired_token():
    # the scale and shift read S, and S excludes the token itself: "the token paired with it" would be false
    names = ["block 1 · layer 1 · MMCA A→B"]
    text = layer_mixing_text(names, [0.001], value_affine=True, exclude_self=True)
    assert "never the paired token itself" in text and "position by position" not in text
    assert "except at the first position" in text  # row 0 has no earlier token: S can only weigh itself


def test_row_0_of_a_model_with_s_over_earlier_tokens_says_it_keeps_all_of_its_content(scene):
    # S over earlier tokens has nothing to weigh in row 0 but the token itself: A_00 = 1, not 1 - alpha
    import re

    import torch

    from app.checkpoints import TASK_SPECS, load_task_model
    from app.handlers import Runner

    runner = Runner(load_task_model(TASK_SPECS["segmentation"]))
    if not runner.loaded.trained or not runner.model.config.ica_exclude_self:
        pytest.skip("needs the bundled segmentation checkpoint (S over earlier tokens)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        layer = runner.layer_choices[0]  # MMCA A→B: the rgb tokens are the queries, in order
        first = runner.attention(scene.file("rgb"), scene.file("depth"), layer, "rgb", 0)[-1]
        later_views = runner.attention(scene.file("rgb"), scene.file("depth"), layer, "rgb", 9)
        later = later_views[-1]
    finally:
        torch.set_num_threads(threads)
    assert "**Row 0 of" in first and "self-weight A<sub>ii</sub> = 1.000" in first and "A<sub>00</sub> = 1" in first
    weight = float(re.search(r"self-weight A<sub>ii</sub> = (\d\.\d+)", later).group(1))
    assert "**Row 0 of" not in later and "A<sub>00</sub>" not in later and weight < 0.9
    # LICA makes the rollout signed: its row is then said not to be shares, with its sum
    rollout_title = later_views[2].layout.title.text
    assert "negative weights (not drawn)" in rollout_title and re.search(r"the row sums to -?\d\.\d\d, so its weights "
                                                                         r"are not shares", rollout_title)
    # the side text says it too: at 200 % zoom the figure's title is cut before the caveat
    said = re.search(r"negative weights \(not drawn\): \d+% of the row's absolute weight; the row sums to -?\d\.\d\d", later)
    assert said and said.group(0) in " ".join(re.sub(r"<[^>]+>", " ", rollout_title).split())  # the title is wrapped


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def _runner_stub(task: str, names=GENRES, output=None, thresholds=(0.5, 0.5, 0.5, 0.5)):
    """What `Runner`'s methods read of themselves, with a prediction given: no model is loaded."""
    return SimpleNamespace(config=SimpleNamespace(task=task, class_names=names),
                           prepare=lambda a, b: None, predict=lambda p: SimpleNamespace(output=output),
                           thresholds=lambda: np.asarray(thresholds, dtype=float),
                           layer_choices=["L1 (mmca)", "L2 (imca)", "L3 (mmca)"])


def test_genre_targets_are_offered_most_probable_first():
    fake = _runner_stub("genre", output=torch.tensor([[-2.0, 3.0, 0.0, 1.0]]))
    assert [v for _, v in Runner.target_choices(fake, None, None)] == ["Comedy", "Romance", "Horror", "Drama"]


def test_the_attention_row_text_gives_the_other_tokens_one_minus_the_self_weight():
    fake = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(ica_exclude_self=False)))
    row = SimpleNamespace(role="query", row=3, query_token=3, output_token=7)
    amap = SimpleNamespace(kind="ica", name="layer 1")
    text = Runner._attention_text(fake, row, amap, lambda t: f"token {t}", 0.8, 0.5)
    assert "self-weight A<sub>ii</sub> = 0.800; all other weights share 0.200" in text


def test_a_row_that_writes_into_or_reads_from_a_pad_position_says_why_it_shows_little(film):
    """A short plot leaves most text positions as pads, which the view does not draw: the default query (a
    poster patch in the grid's middle) then writes, in MMCA A→B, into a pad. The text says so and what to pick."""
    from app.checkpoints import TASK_SPECS, load_task_model

    runner = Runner(load_task_model(TASK_SPECS["genre"]))
    plot = "A group of astronomers go on an expedition to the Moon."  # 14 tokens with ⟨start⟩ and ⟨end⟩
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mmca_ab, mmca_ba = runner.layer_choices[0], runner.layer_choices[1]
        assert "MMCA A→B" in mmca_ab and "MMCA B→A" in mmca_ba  # A: the poster, B: the plot
        into_pad = runner.attention(film.poster, plot, mmca_ab, "poster", 36)[-1]
        into_word = runner.attention(film.poster, plot, mmca_ab, "poster", 3)[-1]
        from_pad = runner.attention(film.poster, plot, mmca_ba, "poster", 36)[-1]
        from_word = runner.attention(film.poster, plot, mmca_ba, "poster", 13)[-1]
    finally:
        torch.set_num_threads(threads)
    after_end = "a pad position after the plot's ⟨end⟩ (the plot fills its first 14 positions)"
    assert into_pad.startswith(f"*This row writes into plot token 36 (padding), {after_end}, so its orange weights")
    assert from_pad.startswith(f"*This row's query is plot token 36 (padding), {after_end}: its blue weights")
    for text in (into_word, from_word):  # position 13 is ⟨end⟩, the plot's last token: no pad
        assert text.startswith("**Row ") and "a pad position" not in text
