"""Stage 2 on cached backbone outputs: the cache holds exactly what the backbones give, mirrored
copies are true mirror images, and a training step on the cache equals one on the images."""

from __future__ import annotations

import itertools

import pytest
import torch

from mango.models import MangoConfig, MangoModel
from train.data import build_splits
from train.features import BackboneCache, mirror_item

from .conftest import TINY_MODEL


def _model(**overrides) -> MangoModel:
    torch.manual_seed(0)
    return MangoModel(MangoConfig.preset("tiny", "segmentation", image_size=32, **{**TINY_MODEL, **overrides}))


def test_the_cache_holds_the_backbone_outputs_and_the_targets(synthrooms):
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    model = _model(a={"name": "rgb", "channels": 3, "encoder": "efficientnet_lite0"}, patch_size=16)
    assert model.cacheable_backbones
    cache = BackboneCache(model, splits.train_eval, mirrored=True, progress=False, split="train")
    n = len(splits.train_eval)
    assert len(cache) == 2 * n and cache.split == "train"
    item = splits.train_eval[1]
    with torch.no_grad():
        direct = model.backbone_outputs(item["a"][None], item["b"][None])
    cached = cache.batch(torch.tensor([1]), torch.device("cpu"))
    for key in ("a", "b"):
        torch.testing.assert_close(cached["backbone"][key], direct[key], atol=2e-2, rtol=1e-2)  # float16 storage
    assert torch.equal(cached["target"][0], item["target"])
    mirrored = cache.batch(torch.tensor([n + 1]), torch.device("cpu"))
    assert torch.equal(mirrored["target"][0], item["target"].flip(-1)) and mirrored["id"][0].endswith("~mirrored")


def test_mirroring_flips_images_and_masks_and_the_x_of_normals_only():
    item = {"a": torch.rand(3, 4, 4), "b": torch.rand(3, 4, 4), "target": torch.rand(3, 4, 4), "id": "x"}
    out = mirror_item(item, {"a": "rgb", "b": "normal", "target": "rgb"}, "translation")
    assert torch.equal(out["a"], item["a"].flip(-1)) and torch.equal(out["target"], item["target"].flip(-1))
    torch.testing.assert_close(out["b"][0], 254 / 255 - item["b"][0].flip(-1))
    assert torch.equal(out["b"][1:], item["b"][1:].flip(-1))
    genre = {"a": torch.rand(2, 3, 4, 4), "b": ["a plot", "another"], "target": torch.eye(2, 5)}
    out = mirror_item(genre, {"a": "poster", "b": "plot"}, "genre")
    assert torch.equal(out["target"], genre["target"]) and out["b"] == genre["b"]


def test_a_loss_on_cached_outputs_equals_the_loss_on_images(synthrooms):
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    model = _model().eval()  # dropout-free comparison
    cache = BackboneCache(model, splits.train_eval, progress=False)
    items = [splits.train_eval[i] for i in range(2)]
    images = {"a": torch.stack([i["a"] for i in items]), "b": torch.stack([i["b"] for i in items]),
              "target": torch.stack([i["target"] for i in items])}
    with torch.no_grad():
        from_images, _ = model.loss(images)
        from_cache, _ = model.loss(cache.batch(torch.arange(2), torch.device("cpu")))
    torch.testing.assert_close(from_cache, from_images, atol=1e-2, rtol=1e-2)


def test_a_text_tower_trained_in_stage_2_cannot_be_cached():
    config = MangoConfig.preset("demo", "genre", image_size=32, patch_size=16, dim=16, num_blocks=1, head_width=16,
                                text_context_length=4, text_width=16, text_layers=1,
                                a={"name": "poster", "channels": 3, "encoder": "vit"}, b={"name": "plot", "kind": "text", "encoder": "clip"},
                                encoder_width=16, encoder_depth=1, decoder_width=32)
    model = MangoModel(config)
    assert not model.cacheable_backbones
    config.finetune_text_encoder = False
    assert model.cacheable_backbones


def test_a_subset_of_the_cache_is_the_cache_of_the_subset(synthrooms):
    """train.crossval computes one cache for all folds and gives each fold its rows: they must be
    the rows (and order, ids, mirrored copies) a cache of the fold's own samples would hold."""
    from torch.utils.data import Subset

    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    model = _model()
    full = BackboneCache(model, splits.train_eval, mirrored=True, progress=False)
    kept = [4, 0, 2]
    for mirrored in (True, False):
        own = BackboneCache(model, Subset(splits.train_eval, kept), mirrored=mirrored, progress=False)
        part = full.subset(kept, mirrored=mirrored)
        assert len(part) == len(own) == len(kept) * (2 if mirrored else 1) and part.ids == own.ids
        assert torch.equal(part.targets, own.targets)
        for key in own.outputs:
            torch.testing.assert_close(part.outputs[key], own.outputs[key], atol=0, rtol=0)
    assert len(full) == 2 * len(splits.train_eval), "the full cache is left as it was"
    unmirrored = BackboneCache(model, splits.train_eval, progress=False)
    with pytest.raises(ValueError, match="mirrored"):
        unmirrored.subset(kept, mirrored=True)
    with pytest.raises(IndexError):
        full.subset([len(splits.train_eval)])


def test_drawing_like_caching_leaves_the_random_stream_where_caching_does(synthrooms):
    from train.features import draw_like_caching

    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    model = _model()
    torch.manual_seed(5)
    BackboneCache(model, splits.train_eval, mirrored=True, progress=False)
    BackboneCache(model, splits.val, progress=False)
    after_caching = torch.get_rng_state()
    torch.manual_seed(5)
    draw_like_caching(3)
    assert torch.equal(torch.get_rng_state(), after_caching)
    torch.manual_seed(5)
    draw_like_caching(2)
    assert not torch.equal(torch.get_rng_state(), after_caching)


# -- found unguarded by a fourth mutation audit (each fails on its mutant) ---------------------------------


def _translation_cache(synthrooms, mirrored: bool, size: int = 32):
    from train.trainer import TrainConfig, build_model_config

    cfg = TrainConfig(dataset="taskonomy", root=str(synthrooms / "taskonomy"), out="unused", preset="tiny",
                      image_size=size, inputs=("depth_zbuffer", "normal"), target="rgb", overrides=TINY_MODEL)
    splits = build_splits("taskonomy", synthrooms / "taskonomy", size, inputs=cfg.inputs, target=cfg.target,
                          val_fraction=0.25)
    torch.manual_seed(0)
    model = MangoModel(build_model_config(cfg, splits)).eval()
    return model, splits.train_eval, BackboneCache(model, splits.train_eval, mirrored=mirrored, progress=False)


def test_cached_image_targets_are_the_targets_to_the_nearest_8_bit_step(synthrooms):
    """Translation targets are kept as 8-bit images: rounded (not truncated) and read back at /255, so a
    loss on the cache sees the target the images give, within half a step. Read at 16 px, the 32 px
    images are resized: their values fall between 8-bit steps."""
    model, dataset, cache = _translation_cache(synthrooms, mirrored=False, size=16)
    rows = torch.arange(len(dataset))
    cached = cache.batch(rows, torch.device("cpu"))["target"]
    direct = torch.stack([dataset[i]["target"] for i in range(len(dataset))])
    assert (cached - direct).abs().max() <= 0.5 / 255 + 1e-6
    assert cached.dtype == torch.float32


def test_a_mirrored_cache_mirrors_the_x_of_the_normal_input_not_the_other(synthrooms):
    """The mirrored rows hold the backbones' outputs for the mirrored sample as the loaders would give
    it: the normal map's x channel negated, the depth map only flipped."""
    model, dataset, cache = _translation_cache(synthrooms, mirrored=True)
    n = len(dataset)
    item = {k: v[None] if isinstance(v, torch.Tensor) else [v] for k, v in dataset[1].items()}
    mirrored = mirror_item(item, {"a": "depth_zbuffer", "b": "normal", "target": "rgb"}, "translation")
    with torch.no_grad():
        direct = model.backbone_outputs(mirrored["a"], mirrored["b"])
    cached = cache.batch(torch.tensor([n + 1]), torch.device("cpu"))
    for key in ("a", "b"):
        torch.testing.assert_close(cached["backbone"][key], direct[key], atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(cached["target"][0], mirrored["target"][0], atol=0.5 / 255 + 1e-6, rtol=0)


def test_in_order_hands_out_every_cached_row_once(synthrooms):
    """Evaluation on a cache walks it with in_order: every row, in order, the last partial batch included."""
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    cache = BackboneCache(_model(), splits.train_eval, progress=False)
    ids = [i for batch in cache.in_order(4, torch.device("cpu")) for i in batch["id"]]
    assert ids == cache.ids and len(ids) == len(splits.train_eval) == 9


def test_an_epoch_of_batches_covers_every_row_when_the_batch_size_divides_it(synthrooms):
    """Only a partial last batch is dropped: 18 rows in batches of 6 are 3 batches an epoch, each row once,
    a resumed stream (`skip`) goes on with the batches an uninterrupted one draws next, and a cache
    exactly one batch long gives that batch."""
    splits = build_splits("nyudv2", synthrooms / "nyudv2", 32, val_fraction=0.25)
    cache = BackboneCache(_model(), splits.train_eval, mirrored=True, progress=False)
    assert len(cache) == 18

    def stream(skip=0):
        return cache.batches(6, torch.Generator().manual_seed(0), torch.device("cpu"), skip=skip)

    epoch = [batch["id"] for batch in itertools.islice(stream(), 3)]
    assert sorted(i for ids in epoch for i in ids) == sorted(cache.ids)
    uninterrupted = [batch["id"] for batch in itertools.islice(stream(), 5)]
    resumed = [batch["id"] for batch in itertools.islice(stream(skip=2), 3)]
    assert resumed == uninterrupted[2:]
    one_batch = next(cache.batches(18, torch.Generator().manual_seed(0), torch.device("cpu")))
    assert sorted(one_batch["id"]) == sorted(cache.ids)  # a cache exactly one batch long is usable
