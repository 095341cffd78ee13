"""What a run leaves in its output dir, read back: `metrics.jsonl`, one JSON object per epoch."""

from __future__ import annotations

import json


def read_metrics(path: str) -> list[dict]:
    """The complete lines of a metrics.jsonl, in order; [] if the file is missing.

    A line cut short by a kill ends the list: what follows it was never vouched for.
    """
    records = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return records
