"""Known answers (mango.known_answers) and the explanations benchmark (mango.bench.explanations).

The benchmark is checked on models whose answer is known by construction: a head that reads only
depth must be credited to depth on every object, a head that reads only rgb to rgb, by every method.
Scenes are SynthRooms renders in memory at 64 px.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mango import interpret
from mango import known_answers as ka
from mango.bench import explanations as bench
from mango.data import SYNTHROOMS_CLASSES
from mango.data.synthrooms import render_scene, scene_seed, scene_to_sample
from mango.models import MangoConfig, MangoModel

SIZE, PATCH = 64, 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_config(**overrides) -> MangoConfig:
    settings = dict(
        image_size=SIZE, patch_size=PATCH, dim=16, encoder_width=16, encoder_depth=1, encoder_heads=2,
        decoder_width=16, decoder_heads=2, decoder_depth=1, head_width=16, num_blocks=1,
        class_names=SYNTHROOMS_CLASSES,
    )
    settings.update(overrides)
    return MangoConfig.preset("tiny", "segmentation", **settings)


@pytest.fixture(scope="module")
def scenes():
    """Four unseen-style scenes at 64 px holding camouflaged objects and decals (found, not hand-picked)."""
    found, kinds = [], set()
    for index in range(40):
        out = render_scene(scene_seed(7, index), SIZE)
        item = scene_to_sample(out, "rgb", "depth_zbuffer", "labels", layout="nyudv2")
        objects = ka.known_objects(item["target"], SYNTHROOMS_CLASSES, ("rgb", "depth"), PATCH**2 // 4)
        if objects:
            found.append((item["id"], item["a"][None], item["b"][None], item["target"]))
            kinds |= {o.kind for o in objects}
        if len(found) >= 4 and kinds == {"camouflaged", "decal"}:
            return found
    pytest.fail("no 64 px scenes with both kinds of known-answer object in 40 renders")


class OneModalityReader(nn.Module):
    """A model with a known answer. Each modality's token is its patch's mean normalised value
    (zero at the baseline, which is the normalisation mean); every class logit at a pixel is the
    squared size of one modality's token there. So only that modality can raise any target, and it
    raises every one of them: every method must credit it on every object. Its rollout takes every
    output token's content from the read modality's token at the same patch."""

    def __init__(self, config: MangoConfig, reads: str):
        super().__init__()
        self.config, self.reads = config, reads
        self.class_scale = nn.Parameter(torch.linspace(1.0, 2.0, config.num_classes))
        self.flow = SimpleNamespace(rollout=self._rollout)

    def encode(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        parts = []
        for key, x in (("a", a), ("b", b)):
            m = self.config.modality(key)
            mean = torch.tensor(m.mean).view(1, -1, 1, 1)
            std = torch.tensor(m.std).view(1, -1, 1, 1)
            tokens = F.avg_pool2d((x - mean) / std, PATCH).flatten(2).transpose(1, 2)  # (B, T, C)
            parts.append(F.pad(tokens, (0, self.config.dim - tokens.shape[-1])))
        return torch.cat(parts, dim=1)

    def forward_features(self, features: torch.Tensor, pad_mask=None) -> SimpleNamespace:
        t = self.config.tokens_per_modality
        read = features[:, :t] if self.reads == "a" else features[:, t:]
        energy = read.pow(2).sum(-1).reshape(-1, 1, *self.config.grid)
        logits = F.interpolate(energy * self.class_scale.view(1, -1, 1, 1), scale_factor=PATCH, mode="nearest")
        return SimpleNamespace(output=logits, features=features)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> SimpleNamespace:
        return self.forward_features(self.encode(a, b))

    def _rollout(self, features: torch.Tensor) -> torch.Tensor:
        t = self.config.tokens_per_modality
        offset = 0 if self.reads == "a" else t
        mixing = torch.zeros(2 * t, 2 * t)
        rows = torch.arange(2 * t)
        mixing[rows, offset + rows % t] = 1.0
        return mixing.expand(features.shape[0], -1, -1)


def test_revealing_modality_follows_the_modality_names():
    assert ka.revealing_key("camouflaged", ("rgb", "depth")) == "b"
    assert ka.revealing_key("picture", ("rgb", "depth")) == "a"
    assert ka.revealing_key("rug", ("reshading", "edge_texture")) == "b"
    assert ka.revealing_key("camouflaged", ("depth_zbuffer", "normal")) is None  # both reveal it: no known answer
    assert ka.revealing_key("wall", ("rgb", "depth")) is None


def test_known_objects_are_connected_pieces_of_known_answer_classes():
    labels = np.zeros((16, 16), np.int64)
    camo, picture = SYNTHROOMS_CLASSES.index("camouflaged"), SYNTHROOMS_CLASSES.index("picture")
    labels[1:5, 1:5] = camo  # 16 px
    labels[10:12, 10:12] = camo  # 4 px, a second object
    labels[6, 6] = camo  # a 1 px speck
    labels[12:16, 0:3] = picture  # 12 px
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"), min_pixels=4)
    # class order (picture 9 before camouflaged 11), largest piece first; the 1 px speck is left out
    assert [(o.class_name, o.pixels, o.revealing, o.kind) for o in objects] == [
        ("picture", 12, "a", "decal"), ("camouflaged", 16, "b", "camouflaged"), ("camouflaged", 4, "b", "camouflaged"),
    ]
    for o in objects:
        assert not o.region.numpy()[labels != o.class_index].any()


@pytest.mark.parametrize("values, revealing, right", [
    ((0.5, 2.0), "b", True),     # depth raises it more
    ((0.5, -2.0), "a", True),    # rgb raises it; depth lowers it
    ((3.0, 2.0), "b", False),    # depth raises it, rgb more
    ((-3.0, -0.2), "b", False),  # both lower it: depth "larger" but not revealing anything
    ((0.0, 0.0), "a", False),
])
def test_points_at_needs_the_revealing_modality_to_raise_the_target(values, revealing, right):
    assert ka.points_at(values, revealing) is right


def test_objects_target_is_one_class_region_per_example():
    torch.manual_seed(0)
    output = torch.randn(2, 4, 6, 6)
    regions = torch.zeros(2, 6, 6, dtype=torch.bool)
    regions[0, :2, :3], regions[1, 4:, 1:] = True, True
    for score in interpret.SCORES:
        target = interpret.objects_target([1, 3], regions, score)
        expected = torch.stack([
            interpret.class_region_target(1, regions[0], score)(output[:1])[0],
            interpret.class_region_target(3, regions[1], score)(output[1:])[0],
        ])
        torch.testing.assert_close(target(output), expected)
        # captum stacks path points batch after batch: example k is row k mod B
        torch.testing.assert_close(target(torch.cat([output, output])), torch.cat([expected, expected]))
    logp = torch.log_softmax(output, 1)[0, 1][regions[0]].mean()
    torch.testing.assert_close(interpret.objects_target([1, 3], regions, "log_prob")(output)[0], logp)
    with pytest.raises(ValueError):
        interpret.objects_target([1, 3], torch.zeros(2, 6, 6, dtype=torch.bool))


def test_rollout_sources_count_whose_tokens_feed_the_region():
    t = 4
    weights = torch.tensor([1.0, 0.5, 0.0, 0.0])
    torch.testing.assert_close(interpret.rollout_sources(torch.eye(2 * t), weights), torch.tensor([0.5, 0.5]))
    from_b = torch.zeros(2 * t, 2 * t)
    from_b[:, t:] = 1.0
    torch.testing.assert_close(interpret.rollout_sources(from_b, weights), torch.tensor([0.0, 1.0]))
    region = torch.zeros(4, 4, dtype=torch.bool)
    region[:2, :1] = True
    torch.testing.assert_close(interpret.region_token_weights(region, (2, 2)), torch.tensor([0.5, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("reads, credited, other", [("b", "camouflaged", "decal (picture + rug)"),
                                                    ("a", "decal (picture + rug)", "camouflaged")])
def test_a_head_that_reads_one_modality_is_credited_to_it_every_time(scenes, reads, credited, other):
    model = OneModalityReader(small_config(), reads).eval()
    objects, confusion = bench.evaluate(model, scenes, scores=("logit",), ig_steps=16)
    assert len(objects) >= 4 and confusion.sum() == len(scenes) * SIZE * SIZE
    summary = bench.summarise(objects, bench.class_iou(confusion, SYNTHROOMS_CLASSES))
    for group, pct in ((credited, 100.0), (other, 0.0)):
        rows = summary[summary["group"] == group].set_index("method")["right_pct"]
        assert rows.to_dict() == {m: pct for m in ka.METHODS}, (group, rows.to_dict())
    # the other modality contributes exactly nothing, by every signed method
    unread = "rgb" if reads == "b" else "depth"
    for method in ("shapley", "blurred_shapley", "ablation", "integrated_gradients"):
        assert objects[f"{method}_{unread}"].abs().max() < 1e-6
    assert objects["ig_converged"].all()


def test_benchmark_on_a_real_model_writes_its_table_and_figure(scenes, tmp_path):
    torch.manual_seed(0)
    model = MangoModel(small_config(), load_pretrained=False).eval()
    objects, confusion = bench.evaluate(model, scenes[:2], ig_steps=8, max_ig_steps=32)
    summary = bench.summarise(objects, bench.class_iou(confusion, SYNTHROOMS_CLASSES))
    assert set(objects["score"]) == set(interpret.SCORES)
    assert summary["right_pct"].between(0, 100).all() and (summary["objects"] > 0).all()
    # Shapley values add up to f(both) - f(none) for every object (the benchmark reads the same game)
    total = objects["shapley_rgb"] + objects["shapley_depth"]
    assert np.allclose(total, objects["f_both"] - objects["f_none"], atol=1e-4)
    # rollout shares are shares
    assert np.allclose(objects["rollout_rgb"] + objects["rollout_depth"], 1.0, atol=1e-5)
    out = bench.write(tmp_path / "explanations", objects, summary, {"checkpoint": "untrained", "scenes": 2})
    for name in ("objects.csv", "summary.csv", "explanations.png", "run.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert not math.isnan(bench.table(summary)["class_iou"].iloc[0])


def test_known_objects_join_diagonal_neighbours():
    labels = np.zeros((8, 8), np.int64)
    camo = SYNTHROOMS_CLASSES.index("camouflaged")
    labels[0:2, 0:2] = camo
    labels[2:4, 2:4] = camo  # touches the first square at one corner only
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"))
    assert [o.pixels for o in objects] == [8]


def test_check_objects_reads_recall_inside_the_object_and_needs_ig_to_converge(scenes, monkeypatch):
    _, a, b, labels = scenes[0]
    model = OneModalityReader(small_config(), "b").eval()
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"), PATCH**2 // 4)
    real_ig = interpret.integrated_gradients
    asked = []

    def never_converges(*args, n_steps, **kwargs):  # the true totals, with a completeness error far above tolerance
        asked.append(n_steps)
        result = real_ig(*args, n_steps=n_steps, **kwargs)
        result.delta = result.delta + 10.0 * result.change.abs() + 1.0
        return result

    monkeypatch.setattr(interpret, "integrated_gradients", never_converges)
    checks = ka.check_objects(model, a, b, objects, ig_steps=4, max_ig_steps=16)
    assert asked == [4, 8, 16]  # the steps double up to the maximum for unconverged objects
    predicted = model(a, b).output.argmax(dim=1)[0]
    for check in checks:
        assert not check.ig_converged and check.ig_steps == 16
        assert check.right["integrated_gradients"] is False  # a map that did not converge is no explanation
        assert check.recall == pytest.approx(float((predicted[check.obj.region] == check.obj.class_index).float().mean()))


def test_recall_is_the_share_of_the_objects_own_pixels_the_model_labels(scenes):
    _, a, b, labels = scenes[0]
    labels = torch.as_tensor(labels)
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"), PATCH**2 // 4)

    class Oracle(OneModalityReader):  # predicts the ground truth everywhere
        def forward(self, a, b):
            logits = F.one_hot(labels.long(), len(SYNTHROOMS_CLASSES)).permute(2, 0, 1)[None].float()
            return SimpleNamespace(output=logits, features=self.encode(a, b))

    checks = ka.check_objects(Oracle(small_config(), "b").eval(), a, b, objects, ig_steps=4, max_ig_steps=4)
    assert [c.recall for c in checks] == [1.0] * len(objects)


# -- found unguarded by a fifth mutation audit (each fails on its mutant) ------------------------------


def test_shading_reveals_camouflage_and_texture_reveals_decals():
    """The shade + texture model has known answers too: reshading shows camouflaged objects, edge texture decals."""
    names = ("reshading", "edge_texture")
    assert [ka.revealing_key(c, names) for c in ("camouflaged", "picture", "rug")] == ["a", "b", "b"]
    assert ka.revealing_key("camouflaged", ("rgb", "reshading")) == "b"


def test_ig_reruns_only_the_unconverged_objects_and_keeps_each_result_with_its_object(scenes, monkeypatch):
    """When some objects converge and others need more steps, each object must keep its own totals and steps."""
    _, a, b, labels = next(s for s in scenes if len(ka.known_objects(s[3], SYNTHROOMS_CLASSES, ("rgb", "depth"),
                                                                      PATCH**2 // 4)) >= 2)
    model = OneModalityReader(small_config(), "b").eval()
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"), PATCH**2 // 4)
    real_ig = interpret.integrated_gradients
    rows = []

    def first_object_converges_first(*args, n_steps, **kwargs):  # every object but the first needs a second round
        result = real_ig(*args, n_steps=n_steps, **kwargs)
        rows.append(len(result.delta))
        if len(rows) == 1:
            unconverged = torch.ones_like(result.delta)
            unconverged[0] = 0.0
            result.delta = result.delta + unconverged * (10.0 * result.change.abs() + 1.0)
        return result

    monkeypatch.setattr(interpret, "integrated_gradients", first_object_converges_first)
    checks = ka.check_objects(model, a, b, objects, ig_steps=4, max_ig_steps=16)
    assert rows == [len(objects), len(objects) - 1]
    assert [c.ig_steps for c in checks] == [4] + [8] * (len(objects) - 1)
    for check in checks:  # this model's IG is exact: its totals are the Shapley values of the same object
        assert check.ig_converged
        assert check.right["integrated_gradients"] == ka.points_at(check.values["integrated_gradients"], check.obj.revealing)
        assert check.values["integrated_gradients"] == pytest.approx(check.values["shapley"], abs=1e-4)


def test_rugs_are_decals_like_pictures():
    """The benchmark groups objects by kind: a rug counted as camouflaged would pass a colour-blind model's check."""
    labels = np.zeros((8, 8), np.int64)
    labels[0:3, 0:3] = SYNTHROOMS_CLASSES.index("rug")
    labels[5:8, 5:8] = SYNTHROOMS_CLASSES.index("picture")
    objects = ka.known_objects(labels, SYNTHROOMS_CLASSES, ("rgb", "depth"))
    assert [(o.class_name, o.kind, o.revealing) for o in objects] == [("picture", "decal", "a"), ("rug", "decal", "a")]
