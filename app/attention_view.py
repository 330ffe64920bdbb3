"""The "Attention maps" tab: one ICA layer's row for a picked token, the rollout through the whole flow,
the value-path matrices, and sentences that say how much each layer mixes."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from mango import interpret

from . import plots, ranges
from .inputs import InputError
from .prepared import DISPLAY, Prepared, percent, strongest


class AttentionView:
    """The attention views of a model slot. Mixed into `app.handlers.Runner`: it reads the slot's
    model, config and token layout (`model`, `config`, `t`, `grid`, `names`, `text_key`) and calls its
    `prepare`, `inputs`, `predict`, `labels`, `token_label` and `padding`."""

    def layer_index(self, choice: Any) -> int:
        if isinstance(choice, (int, float)) and not isinstance(choice, bool):
            index = int(choice)
        elif isinstance(choice, str) and choice in self.layer_choices:
            index = self.layer_choices.index(choice)
        else:
            raise InputError(f"Unknown layer {choice!r}; pick one of the list (e.g. {self.layer_choices[0]!r}).")
        if not 0 <= index < len(self.layer_choices):
            raise InputError(f"Layer index {index} is out of range: this flow has {len(self.layer_choices)} ICA layers.")
        return index

    def query_token(self, modality: Any, index: Any) -> int:
        if modality not in self.labels():
            raise InputError(f"The query modality must be one of {list(self.labels())}, got {modality!r}.")
        try:
            local = int(ranges.query_token(self.t).check(index))
        except InputError as err:
            raise InputError(f"{err} Tokens are the {self.grid[0]}×{self.grid[1]} patches in raster order, or word "
                             "positions.") from None
        return local + (self.t if modality == self.labels()[1] else 0)

    def query(self, prepared: Prepared, modality: Any, index: Any) -> tuple[int, str]:
        """The original token a query names, and a note when it had to move: a text position past the
        plot's end (padding) becomes the plot's last word."""
        token = self.query_token(modality, index)
        words = prepared.words
        if words is None or not self.padding(words)[token]:
            return token, ""
        offset = self.t if self.text_key == "b" else 0
        last = next((k for k in range(len(words) - 2, 0, -1) if any(ch.isalnum() for ch in words[k])), len(words) - 1)
        note = (f"{self.token_label(token, words)} comes after the plot's end (its {len(words)} tokens run from "
                f"⟨start⟩ to ⟨end⟩), so the query is its last word, {self.token_label(offset + last, words)}.")
        return offset + last, note

    def picker(self, prepared: Prepared, token: int | None = None) -> np.ndarray | None:
        """Both image modalities side by side with the patch grid, the query patch outlined."""
        image_panels = [(k, p) for k, p in enumerate(prepared.panels) if not p.is_text]
        if not image_panels:
            return None
        marked = None
        if token is not None:
            panel = 0 if token < self.t else 1
            for position, (k, _) in enumerate(image_panels):
                if k == panel:
                    marked = (position, token % self.t)
        return plots.grid_picker([p.image for _, p in image_panels], self.grid, [p.name for _, p in image_panels],
                                 size=_picker_size(), marked=marked)

    def pick(self, x: float, y: float) -> tuple[str, int] | None:
        """Where a click on the picker landed: (query modality label, local index)."""
        image_keys = [k for k in ("a", "b") if k != self.text_key]
        hit = plots.picker_hit(x, y, len(image_keys), self.grid, size=_picker_size())
        if hit is None:
            return None
        panel, local = hit
        key = image_keys[panel]
        return self.labels()["ab".index(key)], local

    @torch.no_grad()
    def attention(self, a_in: Any, b_in: Any, layer: Any, query_modality: Any, query_index: Any) -> tuple:
        """(picker image, attention figure, rollout figure, matrix figure, explanation markdown)."""
        prepared = self.prepare(a_in, b_in)
        if self.model.flow is None:
            raise InputError("This model has no flow, so it has no ICA attention to show.")
        index = self.layer_index(layer)
        token, moved = self.query(prepared, query_modality, query_index)
        features = self.model.encode(*self.inputs(prepared))
        maps = self.model.flow.attention_maps(features)
        amap = maps[index]
        row = interpret.attention_row(amap, token)
        words = prepared.words
        label = lambda t: self.token_label(t, words)  # noqa: E731
        keys, values = row.keys.numpy(), row.values.numpy()
        self_weight = float(row.values[row.output_token])  # A_ii: the share the receiving token keeps
        picked = "the query" if row.role == "query" else "mixed"
        pad = self.padding(words)
        on_pads = ""  # pad tokens are not drawn: their share of the row is said instead
        if keys[pad].sum() + values[pad].sum() >= 5e-4:
            on_pads = (f"<br><span style='font-size:12px'>on padding (not drawn): key weight {keys[pad].sum():.3f}, "
                       f"value weight {values[pad].sum():.3f}</span>")
        title = (f"{self.layer_choices[index]} · picked {label(token)} ({picked})<br>"
                 f"<span style='font-size:12px'>row {row.row}: query {label(row.query_token)} → mix into "
                 f"{label(row.output_token)} · self-weight A<sub>ii</sub> = {self_weight:.3f}</span>{on_pads}")
        panels = prepared.panels
        attention_fig = plots.attention_figure(panels, keys, values, row.query_token, row.output_token, title)
        mixing = interpret.layer_mixing(amap).numpy()
        roll = interpret.rollout_from_maps(maps).numpy()
        roll_row = roll[token]
        roll_pads = f" · on padding (not drawn): {np.clip(roll_row, 0, None)[pad].sum():.3f}" if pad.any() else ""
        negative = float(-roll_row[roll_row < 0].sum() / max(np.abs(roll_row).sum(), 1e-12))
        roll_signed = ""  # LICA's mixing W has negative weights: the rollout is then a signed map, not shares
        if negative >= 0.005:
            roll_signed = (f"negative weights (not drawn): {negative:.0%} of the row's absolute weight; the row sums "
                           f"to {roll_row.sum():.2f}, so its weights are not shares")
            roll_pads += f" · {roll_signed}"
        rollout_fig = plots.token_weights_figure(
            panels, np.clip(roll_row, 0, None),
            f"Rollout through all {len(maps)} ICA layers: the value path's weights into {label(token)}<br>"
            f"<span style='font-size:12px'>its own weight: {roll_row[token]:.3f}{roll_pads}</span>", token, "rollout weight")
        labels_all = [label(t) for t in range(2 * self.t)]
        matrix_fig = plots.matrix_figure(
            [mixing, roll], [f"this layer ({amap.name})", "rollout (whole flow)"], labels_all, self.labels(),
            "Value-path mixing in original token positions (row: output token, column: input token)")
        pads = (f"\n- padding (the {int(pad.sum())} tokens after ⟨end⟩, not drawn): {percent(float(keys[pad].sum()), 1)} % "
                f"of the key weight, {percent(float(values[pad].sum()), 1)} % of the value weight" if pad.any() else "")
        strongest_line = (f"\n- strongest keys: {strongest(keys, label, pad)}; strongest values other than itself: "
                     f"{strongest(values, label, pad | (np.arange(len(values)) == row.output_token))}")
        text = self._attention_text(row, amap, label, self_weight, roll_row[token],
                                    (f" ({roll_signed})" if roll_signed else "") + strongest_line + pads)  # a zoomed page cuts titles
        on_pad = self._pad_row_note(row, pad, label, len(words or []))
        for note in (on_pad, moved):
            if note:
                text = f"*{note}*\n\n" + text
        shares = [float(m.off_diagonal_share()[0]) for m in maps]
        text += "\n\n" + layer_mixing_text(self.layer_choices, shares, index,
                                         value_affine=bool(self.model.config.value_affine),
                                         exclude_self=bool(self.model.config.ica_exclude_self))
        return self.picker(prepared, token), attention_fig, rollout_fig, matrix_fig, text

    @staticmethod
    def _pad_row_note(row: interpret.AttentionRow, pad: np.ndarray, label: Callable[[int], str], filled: int) -> str:
        """Why a row shows little when it writes into, or is computed from, a pad position after the plot's
        end: the view does not draw pads (a short plot under the default query, a poster patch, in MMCA A→B)."""
        where = f"a pad position after the plot's ⟨end⟩ (the plot fills its first {filled} positions)"
        if pad[row.output_token]:
            return (f"This row writes into {label(row.output_token)}, {where}, so its orange weights are not drawn. "
                    "Pick another token (a word, or a patch nearer the top left) for a row that writes into the plot.")
        if pad[row.query_token]:
            return (f"This row's query is {label(row.query_token)}, {where}: its blue weights are computed from a pad "
                    "token's features, not from a word.")
        return ""

    def _attention_text(self, row: interpret.AttentionRow, amap: Any, label: Callable[[int], str], self_weight: float,
                        roll_self: float, pads: str = "") -> str:
        role = ("is the **query** of this row: its features (with the other X1 tokens' as keys) decide the weights"
                if row.role == "query" else
                "is **mixed** by this row: its new value is the weighted mix of the orange tokens")
        lica = ("\n\n*LICA*: the halves are mixtures W·X of all tokens; positions shown are those of the permutation P "
                "(exact at initialisation; after training the largest single weight of each row of W, but a small part "
                "of the row). The matrix view (the third chart) is exact; it colours each weight by its absolute value, "
                "so a negative weight looks like a positive one (the hover gives its sign)."
                if amap.kind == "lica" else "")
        first = (" (row 0 has no earlier token for S to weigh, so S falls on the token itself and it keeps all of its "
                 "content: A<sub>00</sub> = 1, not 1 − α)" if row.row == 0 and self.model.config.ica_exclude_self else "")
        return (
            f"**Row {row.row} of {amap.name}.** {label(row.query_token)} (solid black outline) computes the scores; "
            f"{label(row.output_token)} (dashed green outline) receives the mix. The token you picked {role}.\n\n"
            f"- blue: the comparison weights S[i, j] of the query with each key it may see (they sum to 1)\n"
            f"- orange: the row of A at the X2 tokens whose content is mixed in (gated form: α times the blue "
            f"weight of the matching key, except A<sub>ii</sub>)\n"
            f"- self-weight A<sub>ii</sub> = {self_weight:.3f}; all other weights share {1 - self_weight:.3f}{first}\n"
            f"- rollout: the picked token's own weight on the value path through the flow, {roll_self:.3f}{pads}{lica}"
        )


def _picker_size() -> int:
    """The side of each picker panel: on a phone, stacked, as wide as the screen allows (40 px patches)."""
    return plots.PHONE_PICKER if plots.on_phone() else DISPLAY


def _share_percent(share: float) -> str:
    value = 100.0 * share
    if value < 0.1:
        return "under 0.1 %"
    if value > 99.9 and value < 100.0:
        return "over 99.9 %"
    return f"{value:.1f} %" if value < 10 or value > 90 else f"{value:.0f} %"


def _mixing_verdict(share: float) -> str:
    return ("barely mixes (close to the identity)" if share < 0.01 else
            "mixes a little" if share < 0.10 else "mixes moderately" if share < 0.30 else "mixes strongly")


def mixing_sentence(share: float) -> str:
    """One sentence on how much an ICA layer mixes, from its off-diagonal share
    (`AttentionMap.off_diagonal_share`: 1 − A_ii / Σ_j A_ij, averaged over the rows it updates)."""
    return (f"each token it updates keeps {_share_percent(1.0 - share)} of its own content and takes {_share_percent(share)} "
            f"from other tokens: it {_mixing_verdict(share)}.")


_VALUE_AFFINE = ("These shares count the value path **A** only. This model's ICA layers also scale and shift each "
                 "token they update by the tokens of the other half that ")


VALUE_AFFINE_NOTE = (
    _VALUE_AFFINE + "the same attention selects: where a layer's attention stays on its "
    "diagonal, that is the token paired with it (in an MMCA layer, the other modality's token at the same position). "
    "Such a layer still fuses the two halves, position by position, without mixing positions.")


# With S over earlier tokens only the scale and shift never read the paired token: A's diagonal, drawn at
# 1 − α, is the gate's, and S has none (but in row 0, where S can only weigh the token itself).
VALUE_AFFINE_NOTE_CAUSAL = (
    _VALUE_AFFINE + "the comparison weights S select. S covers earlier tokens only "
    "(the diagonal drawn in **A**, 1 − α, is the gate's share, not S's), so the scale and shift read the tokens "
    "before the paired one, never the paired token itself (in an MMCA layer, the other modality's earlier "
    "positions), except at the first position, which has none before it and reads its own pair. They fuse the "
    "halves beyond what the shares count.")


def layer_mixing_text(names: Sequence[str], shares: Sequence[float], selected: int | None = None,
                      value_affine: bool = False, exclude_self: bool = False) -> str:
    """Markdown: the selected layer in a full sentence, then one short sentence per ICA layer (on this input),
    and, for layers with a value affine, what the shares leave out."""
    lines = []
    if selected is not None:
        lines.append(f"**This layer ({names[selected]}):** {mixing_sentence(shares[selected])}\n")
    lines.append(f"**Every layer, on this input** (a layer updates half the tokens; the other half passes unchanged; "
                 f"mean {_share_percent(float(np.mean(shares)))} from other tokens):")
    for k, (name, share) in enumerate(zip(names, shares)):
        sentence = f"{name} keeps {_share_percent(1.0 - share)}, takes {_share_percent(share)} from other tokens: {_mixing_verdict(share)}."
        lines.append(f"- **{sentence}**" if k == selected else f"- {sentence}")
    if value_affine:
        lines.append("\n" + (VALUE_AFFINE_NOTE_CAUSAL if exclude_self else VALUE_AFFINE_NOTE))
    return "\n".join(lines)
