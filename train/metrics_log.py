"""A run's evaluation rows: ``metrics.jsonl`` (every value) and ``metrics.csv`` (its scalar columns).

The jsonl file is the record; the CSV is a view of it for spreadsheets and pandas. A row is one
``write`` of one line, flushed to disk, so a kill can only cut off the row being written. The CSV
gets one appended line per row, and is rewritten (atomically) from the jsonl only when a row brings
new columns (validation metrics appear in stage 2) or when the log is rolled back.

After a kill the rows logged after the last saved training state describe steps that will be run
again: ``roll_back`` drops them, so every evaluation is logged exactly once.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Callable

from .atomic import atomic_write_text, remove_part_file

Row = dict[str, Any]


def _scalars(row: Row) -> Row:
    return {k: v for k, v in row.items() if not isinstance(v, (list, dict))}


class MetricsLog:
    """Append-only evaluation log of a run folder, with rollback to a saved state."""

    def __init__(self, folder: Path):
        self.jsonl = folder / "metrics.jsonl"
        self.csv = folder / "metrics.csv"
        self._columns: list[str] | None = None  # the CSV header, once known

    def rows(self) -> list[Row]:
        """Every complete row; a last line without its newline (cut short by a kill) is not a row."""
        if not self.jsonl.is_file():
            return []
        text = self.jsonl.read_text()
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def append(self, row: Row) -> None:
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        scalars = _scalars(row)
        columns = self._csv_columns()
        if columns is not None and set(scalars) <= set(columns):
            with self.csv.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=columns).writerow(scalars)
                f.flush()
                os.fsync(f.fileno())
        else:
            self._rewrite_csv(self.rows())

    def roll_back(self, keep: Callable[[Row], bool]) -> int:
        """Keep only the rows `keep` accepts (and drop a cut-off last line); returns how many were dropped."""
        remove_part_file(self.jsonl)
        remove_part_file(self.csv)
        text = self.jsonl.read_text() if self.jsonl.is_file() else ""
        rows = self.rows()
        kept = [r for r in rows if keep(r)]
        if not kept:
            self.jsonl.unlink(missing_ok=True)
            self.csv.unlink(missing_ok=True)
            self._columns = None
            return len(rows)
        if len(kept) != len(rows) or not text.endswith("\n"):
            atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        self._rewrite_csv(kept)
        return len(rows) - len(kept)

    def _csv_columns(self) -> list[str] | None:
        if self._columns is None and self.csv.is_file():
            with self.csv.open(newline="") as f:
                self._columns = next(csv.reader(f), None)
        return self._columns

    def _rewrite_csv(self, rows: list[Row]) -> None:
        """Write the whole CSV from `rows`: the columns are their union, in the order they first appear."""
        table = [_scalars(r) for r in rows]
        columns = list(dict.fromkeys(k for r in table for k in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
        atomic_write_text(self.csv, buffer.getvalue())
        self._columns = columns
