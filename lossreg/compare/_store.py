"""``results.jsonl``: one JSON line per finished fit, appended atomically; read back to resume."""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["ResultStore", "finish_record", "record_failure"]


class ResultStore:
    """Append-only JSON-lines file of fit records, keyed by ``record["key"]``.

    Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor and
    fsynced, so a killed run leaves whole lines plus at most one partial last line, which
    :meth:`load` drops (and cuts from the file, so the next line starts clean).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Return the complete records by key (a later line wins); repair a partial tail."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            # An interrupted write: the partial last line is not a finished fit.
            with self.path.open("r+b") as handle:
                handle.truncate(end)
        records: dict[str, dict[str, Any]] = {}
        for line in raw[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "key" in record:
                records[record["key"]] = record
        return records

    def append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = json.dumps(_finite(record), sort_keys=True, allow_nan=False) + "\n"
        os.write(self._fd, line.encode())
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _finite(value: Any) -> Any:
    """NaN and infinities as null: strict JSON that any reader takes."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def record_failure(record: dict[str, Any], exc: BaseException) -> None:
    """Mark ``record`` as a failed fit: status, the error and the last frames of its traceback.

    Call it inside the ``except`` block, where the traceback is the exception's. A failed fit
    is stored like any other, so a resumed run does not retry it and the report names it.
    """
    record["status"] = "error"
    record["error"] = f"{type(exc).__name__}: {exc}"
    record["traceback"] = traceback.format_exc(limit=-4)


def finish_record(record: dict[str, Any], caught: Any = ()) -> dict[str, Any]:
    """Stamp ``record`` finished; keep the first five distinct warnings ``caught`` in the fit."""
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if messages:
        record["warnings"] = messages[:5]
    record["finished_at"] = time.time()
    return record
