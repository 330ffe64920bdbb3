"""Every numeric parameter of the app, defined once: the slider is built from it, and the handler
validates what arrives (from the page or the API) against the same range.

`NumericRange.check` turns any value (a number, a numeric string, anything else) into the number
the handler uses, or raises `InputError` with a message that names the parameter. Whole-number
parameters refuse fractions instead of truncating them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .inputs import InputError


@dataclass(frozen=True)
class NumericRange:
    """One numeric parameter: its name as the user reads it, its bounds (inclusive), default and step."""

    name: str
    minimum: float
    maximum: float
    default: float
    step: float = 1
    integer: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {_fmt(self.minimum)} to {_fmt(self.maximum)}"

    def check(self, value: Any) -> int | float:
        """``value`` as an int (whole-number parameters) or float, or InputError naming the parameter."""
        number: float
        if isinstance(value, bool) or value is None:
            raise InputError(f"The {self.name} must be {self.describe()}; got {value!r}.")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise InputError(f"The {self.name} must be {self.describe()}; got the text {value!r}.") from None
        else:
            raise InputError(f"The {self.name} must be {self.describe()}; got {type(value).__name__} {value!r}.")
        if not math.isfinite(number):
            raise InputError(f"The {self.name} must be {self.describe()}; got {value!r}.")
        if self.integer and number != int(number):
            raise InputError(f"The {self.name} must be a whole number; got {_fmt(number)} (it is not rounded for you).")
        if not self.minimum <= number <= self.maximum:
            raise InputError(f"The {self.name} must be {self.describe()}; got {_fmt(number)}.")
        return int(number) if self.integer else number


def _fmt(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


TEMPERATURE = NumericRange("temperature", 0.1, 1.5, 0.7, step=0.05)
SEED = NumericRange("seed", 0, 2**32 - 1, 0, integer=True)
SAMPLES = NumericRange("number of samples", 1, 8, 4, integer=True)
INTERPOLATION_STEPS = NumericRange("number of interpolation steps", 2, 10, 6, integer=True)
# The slider sets where Integrated Gradients starts: the handler doubles the count until the completeness
# error is <= 5 %. Gauss-Legendre IG on the bundled checkpoints' example inputs: at 8 steps shade + texture
# (256 tokens, the slow one) is within 1.1 %; segmentation and genre mostly converge there, depth + normal on
# half the examples; the rest need 16, one depth + normal example 32. Starting at 8 keeps the slow model's
# explanation within its 5 s budget.
IG_STEPS = NumericRange("number of Integrated Gradients steps", 8, 128, 8, step=8, integer=True)
OVERLAY_OPACITY = NumericRange("overlay opacity", 0.0, 1.0, 0.5, step=0.05)


def query_token(tokens: int) -> NumericRange:
    """The query token's index within its modality: 0 .. tokens - 1 (patches in raster order, or words)."""
    return NumericRange("query token index", 0, tokens - 1, tokens // 2, integer=True)
