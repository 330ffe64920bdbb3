"""Image autoencoder and text encoder, on their own."""

from __future__ import annotations

import time
import warnings

import pytest
import torch

from mango.models import (HubOfflineError, ImageDecoder, ImageEncoder, ModalityConfig, TextCutWarning, TextEncoder,
                          patchify, unpatchify)
from mango.models.text import END, START


def test_patchify_is_raster_order_and_inverts() -> None:
    images = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    patches = patchify(images, 4)
    assert patches.shape == (2, 6, 4 * 4 * 3)
    # token t covers rows (t // 3) * 4 .. +4 and cols (t % 3) * 4 .. +4
    t = 4
    block = images[:, :, 4:8, 4:8].permute(0, 2, 3, 1).reshape(2, -1)
    assert torch.equal(patches[:, t], block)
    assert torch.equal(unpatchify(patches, 4, 3, (2, 3)), images)


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_image_encoder_takes_any_channel_count(channels: int) -> None:
    modality = ModalityConfig("m", channels=channels)
    encoder = ImageEncoder(modality, image_size=32, patch_size=8, dim=24, width=16, depth=1, heads=2)
    decoder = ImageDecoder(modality, image_size=32, patch_size=8, in_dim=24, width=16, depth=1, heads=2)
    pixels = torch.rand(2, channels, 32, 32)
    tokens = encoder(pixels)
    assert tokens.shape == (2, 16, 24)
    assert decoder(tokens).shape == pixels.shape
    loss = decoder.reconstruction_loss(tokens, pixels)
    loss.backward()
    assert loss.ndim == 0 and encoder.vit.patch_embed.proj.weight.grad is not None


def test_image_encoder_names_the_modality_on_a_wrong_shape() -> None:
    encoder = ImageEncoder(ModalityConfig("depth", channels=1), 32, 8, 16, 16, 1, 2)
    with pytest.raises(ValueError, match="depth"):
        encoder(torch.rand(1, 3, 32, 32))


def test_pretrained_encoder_offline_fails_fast(offline_hub) -> None:
    start = time.perf_counter()
    with pytest.raises(HubOfflineError, match="vit_base_patch16_224.mae"):
        ImageEncoder(ModalityConfig("rgb"), 32, 16, 768, 768, 12, 12, pretrained="vit_base_patch16_224.mae")
    assert time.perf_counter() - start < 1.0


def test_pretrained_clip_text_offline_fails_fast(offline_hub) -> None:
    start = time.perf_counter()
    with pytest.raises(HubOfflineError, match="CLIP"):
        TextEncoder(32, 80, 512, 1, 8, 77, pretrained="ViT-B-32:openai", quick_gelu=True)
    assert time.perf_counter() - start < 1.0


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(dim=16, tokens=12, width=32, layers=1, heads=2, context_length=8).eval()


def test_text_is_padded_to_t_with_known_pads(text_encoder: TextEncoder) -> None:
    with pytest.warns(TextCutWarning, match="context of 8 tokens was cut"):  # the library cut it silently
        features, pad = text_encoder(["a dog", "one two three four five six seven eight nine"])
    assert features.shape == (2, 12, 16) and pad.shape == (2, 12)
    # "a dog" = start, a, dog, end: 4 real tokens; the long plot is cut to the context of 8
    assert pad.sum(1).tolist() == [12 - 4, 12 - 8]
    assert torch.all(features[pad] == 0) and torch.all(features[~pad].abs().sum(-1) > 0)


def test_a_text_that_just_fits_is_not_said_to_be_cut(text_encoder: TextEncoder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextCutWarning)
        _, pad = text_encoder(["one two three four five six"])  # start, 6 words, end: the context of 8 exactly
    assert int((~pad).sum()) == 8 == text_encoder.token_count("one two three four five six")


def test_only_a_text_that_fills_the_context_is_tokenized_again(monkeypatch) -> None:
    encoder = TextEncoder(dim=16, tokens=12, width=32, layers=1, heads=2, context_length=8)
    counted: list[str] = []
    monkeypatch.setattr(encoder, "token_count", lambda text: counted.append(text) or 99)
    encoder.as_ids(["a dog", "a cat sat"])  # short: nothing was cut, no second pass
    assert counted == []
    with pytest.warns(TextCutWarning):
        encoder.as_ids(["a dog", "one two three four five six seven eight nine"])
    assert counted == ["one two three four five six seven eight nine"]


def test_text_ids_and_strings_agree_and_pads_do_not_leak(text_encoder: TextEncoder) -> None:
    texts = ["a dog", "a dog runs far away"]
    from_strings, _ = text_encoder(texts)
    token_ids = text_encoder.tokenize(texts)
    from_ids, _ = text_encoder(token_ids)
    assert torch.equal(from_strings, from_ids)
    # causal tower: the shared prefix "start a dog" has the same features whatever follows
    assert torch.allclose(from_ids[0, :3], from_ids[1, :3], atol=1e-6)
    short, _ = text_encoder(token_ids[:, :5])  # shorter id tensors are right-padded
    assert short.shape == (2, 12, 16)
    with pytest.raises(ValueError, match="context_length"):
        text_encoder(torch.zeros(1, 9, dtype=torch.long))
    assert text_encoder.tokenizer.decode([int(token_ids[0, 2])]).strip() == "dog"


def test_clip_text_weights_load_from_the_hub_cache(offline_hub, monkeypatch) -> None:
    """The CLIP path end to end on a tiny stand-in checkpoint: Hub cache, "text." prefixes,
    vision keys ignored, every text weight copied."""
    import open_clip.pretrained
    from safetensors.torch import save_file

    monkeypatch.setattr(
        open_clip.pretrained, "get_pretrained_cfg", lambda model, tag: {"hf_hub": "mango-test/tiny-clip/", "quick_gelu": False}
    )
    torch.manual_seed(1)
    source = TextEncoder(dim=8, tokens=12, width=32, layers=1, heads=2, context_length=8)
    state = {f"text.{k}": v.contiguous() for k, v in source.tower.state_dict().items() if k != "attn_mask"}
    state["visual.proj"] = torch.zeros(3)
    snapshot = offline_hub / "hub" / "models--mango-test--tiny-clip" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    save_file(state, str(snapshot / "open_clip_model.safetensors"))

    torch.manual_seed(2)
    loaded = TextEncoder(dim=8, tokens=12, width=32, layers=1, heads=2, context_length=8, pretrained="Tiny:test")
    for key, value in source.tower.state_dict().items():
        assert torch.equal(loaded.tower.state_dict()[key], value), key
    with pytest.raises(ValueError, match="text_width"):
        TextEncoder(dim=8, tokens=12, width=64, layers=1, heads=2, context_length=8, pretrained="Tiny:test")


def test_a_cut_text_is_said_once_per_encoder_not_at_every_call() -> None:
    torch.manual_seed(0)
    encoder = TextEncoder(dim=16, tokens=12, width=32, layers=1, heads=2, context_length=8).eval()
    long = ["one two three four five six seven eight nine"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")  # Python's once-only rule out of the way: the encoder's own counts
        encoder(long)
        encoder(long)
        encoder(["a dog"])
    assert [type(w.message) for w in said] == [TextCutWarning]


# -- found unguarded by a third mutation audit (each fails on its mutant) ----------------------------------


def test_clip_word_pieces_run_from_start_to_end() -> None:
    torch.manual_seed(0)
    enc = TextEncoder(dim=16, tokens=12, width=32, layers=1, heads=2, context_length=8).eval()
    ids = enc.tokenize(["a dog"])
    assert enc.word_pieces(ids[0]) == [START, "a", "dog", END]
    assert enc.token_count("a dog") == 4
