"""Benchmarks: `python -m mango.bench NAME [options]`; timings live here, never in tests."""

from __future__ import annotations

import argparse


def refuse_below(parser: argparse.ArgumentParser, least: int, *options: tuple[str, int | None]) -> None:
    """A usage error for the first (name, value) below ``least``; None (an unset option) passes. Checked
    before any work: each benchmark builds models, scenes or tokens first, and a count that cannot work
    would fail only after them (or be ignored, as a thread count of 0 was)."""
    for name, value in options:
        if value is not None and value < least:
            parser.error(f"{name} must be at least {least}, got {value}")
