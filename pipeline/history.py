"""The draw history a job reads: JSON Lines of `{"draw_id", "timestamp", "value"}`, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import HistoryRecord
from pipeline.errors import PipelineInputError
from pipeline.files import read_models_jsonl, write_models_jsonl

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path


@dataclass(frozen=True)
class History:
    """A validated history: the records and their values as an int64 array."""

    path: Path
    records: tuple[HistoryRecord, ...]
    values: np.ndarray

    def __len__(self) -> int:
        """Number of draws."""
        return len(self.records)

    @property
    def last_draw_id(self) -> str | None:
        """The id of the most recent draw, if any."""
        return self.records[-1].draw_id if self.records else None

    @property
    def last_timestamp(self) -> datetime | None:
        """The timestamp of the most recent draw, if any."""
        return self.records[-1].timestamp if self.records else None

    def require(self, count: int, why: str) -> None:
        """PipelineInputError unless the history holds at least `count` draws."""
        if len(self) < count:
            raise PipelineInputError(
                str(self.path), f"has {len(self)} draws, needs at least {count}", why
            )

    def check_below(self, mod: int) -> None:
        """PipelineInputError naming the first value that is not below `mod`."""
        for number, record in enumerate(self.records, start=1):
            if record.value >= mod:
                raise PipelineInputError(
                    f"{self.path}:{number}", f"value {record.value} is not below mod {mod}"
                )


def load_history(path: Path) -> History:
    """Read and validate a history file: unique draw ids, timestamps never going back."""
    records = read_models_jsonl(path, HistoryRecord)
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        if record.draw_id in seen:
            raise PipelineInputError(f"{path}:{number}", f"duplicate draw_id {record.draw_id!r}")
        seen.add(record.draw_id)
        if number > 1 and _is_before(record.timestamp, records[number - 2].timestamp):
            raise PipelineInputError(
                f"{path}:{number}", "timestamp goes back in time", record.timestamp.isoformat()
            )
    values = np.fromiter((r.value for r in records), dtype=np.int64, count=len(records))
    return History(path=path, records=tuple(records), values=values)


def _is_before(a: datetime, b: datetime) -> bool:
    """a < b, comparing naive timestamps as if they shared a's zone."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return a < b


def write_history(path: Path, records: list[HistoryRecord]) -> None:
    """Write a history file atomically."""
    write_models_jsonl(path, records)
