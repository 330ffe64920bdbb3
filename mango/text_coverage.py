"""How much of a text a model's vocabulary covers, and a word count that works for every script.

Two questions the app asks of a plot summary before trusting a prediction on it:

- **How many words does it have?** Splitting on spaces fails for scripts written without them
  (a Chinese sentence would be one "word"). `words` takes runs of letters, marks and digits
  (Unicode classes, through the `regex` package) as words, and each letter of a script
  written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) as a word of its own,
  the usual approximation without a dictionary. Emoji, symbols and control characters are not
  words.
- **How much of it does the model's vocabulary cover?** A byte-level BPE (open_clip's
  `SimpleTokenizer`) never produces an unknown token: any string becomes some pieces. So
  "covered" means the tokenizer knows the word as a word, not merely as bytes: the word is one
  vocabulary token, or splits into pieces of at least `MIN_CHARS_PER_PIECE` characters on average
  ("marguerite" -> mar·guer·ite), with no unknown token (WordPiece's ``[UNK]``). Gibberish shatters
  into one- and two-letter pieces and is not covered. Characters of the scripts written without
  spaces are never covered: a tokenizer sees no word boundaries there, and the English-trained
  vocabularies used here hold them at best as single characters, not as words.

Works with open_clip's `SimpleTokenizer` and with any Hugging Face tokenizer (`tokenize`,
`unk_token`), e.g. all-MiniLM-L6-v2's WordPiece.

- **Which language is it?** Coverage cannot tell: a French plot splits into long, known word
  pieces (81 % "covered" in a check). `language` asks py3langid (langid.py's model, 97
  languages, shipped in its wheel, so it works offline). On the 1,222 English plots of
  `../shared/data/movies` it named English for every one; a short text of few words can come out
  as anything, with a low probability, so callers act only on a confident answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

UNSPACED_SCRIPTS = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan")
MIN_CHARS_PER_PIECE = 3.0

_UNSPACED = "".join(rf"\p{{{s}}}" for s in UNSPACED_SCRIPTS)
# One letter of an unspaced script with its combining marks, or a run of letters/marks/digits of
# any other script.
_WORD = regex.compile(rf"[\p{{L}}&&[{_UNSPACED}]]\p{{M}}*|[[\p{{L}}\p{{M}}\p{{N}}]--[{_UNSPACED}]]+", regex.VERSION1)
_UNSPACED_CHAR = regex.compile(rf"[\p{{L}}&&[{_UNSPACED}]]\p{{M}}*", regex.VERSION1)
_CONTROL = regex.compile(r"[\p{Cc}\p{Cf}\p{Co}\p{Cs}--[\t\n\r]]", regex.VERSION1)


def words(text: str) -> list[str]:
    """The words of ``text``: letter/digit runs, and single characters of unspaced scripts."""
    return _WORD.findall(text)


def word_count(text: str) -> int:
    """How many words ``text`` has, in any script (see `words`)."""
    return len(words(text))


def strip_control(text: str) -> tuple[str, int]:
    """``text`` without control, format and private-use characters (tabs and newlines kept), and
    how many were removed."""
    cleaned, removed = _CONTROL.subn("", text)
    return cleaned, removed


@dataclass(frozen=True)
class Coverage:
    """How many of a text's words a tokenizer's vocabulary covers, with a few that it does not."""

    words: int
    covered: int
    uncovered_examples: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        """Covered words / words; 0 for a text without words."""
        return self.covered / self.words if self.words else 0.0


def word_pieces(word: str, tokenizer: Any) -> tuple[list[str], bool]:
    """How ``tokenizer`` splits one word: (pieces, whether any piece is the unknown token).

    Supports Hugging Face tokenizers (``tokenize`` + ``unk_token``) and open_clip's SimpleTokenizer
    (``encode`` + ``decoder``; byte-level, so never unknown).
    """
    if hasattr(tokenizer, "tokenize") and getattr(tokenizer, "unk_token", None) is not None:
        pieces = list(tokenizer.tokenize(word))
        return pieces, tokenizer.unk_token in pieces
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decoder"):
        return [tokenizer.decoder[i] for i in tokenizer.encode(word)], False
    raise TypeError(
        f"unsupported tokenizer {type(tokenizer).__name__}: expected a Hugging Face tokenizer "
        "(tokenize, unk_token) or open_clip's SimpleTokenizer (encode, decoder)"
    )


def is_covered(word: str, tokenizer: Any) -> bool:
    """Whether the vocabulary knows ``word`` as a word (see the module docstring)."""
    if _UNSPACED_CHAR.fullmatch(word):
        return False
    pieces, unknown = word_pieces(word, tokenizer)
    if unknown or not pieces:
        return False
    if word.isdecimal():  # numbers: byte-level BPE spells them digit by digit, which is known
        return True
    return len(pieces) == 1 or len(word) / len(pieces) >= MIN_CHARS_PER_PIECE


def vocabulary_coverage(text: str, tokenizer: Any, examples: int = 5) -> Coverage:
    """How much of ``text`` the vocabulary of ``tokenizer`` covers, word by word (distinct words
    are tokenized once)."""
    found = words(text)
    check = lru_cache(maxsize=None)(lambda w: is_covered(w, tokenizer))
    uncovered = [w for w in found if not check(w)]
    shown = tuple(dict.fromkeys(uncovered))[:examples]
    return Coverage(len(found), len(found) - len(uncovered), shown)


@lru_cache(maxsize=1)
def _language_identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language(text: str) -> tuple[str, float]:
    """The most likely language of ``text`` as an ISO 639-1 code (e.g. "en", "fr") and its
    probability among the 97 languages py3langid knows."""
    code, probability = _language_identifier().classify(text)
    return str(code), float(probability)
