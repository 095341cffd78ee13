"""What the analysis commands write: one figure and its numbers, `NAME.png` beside `NAME.json`."""

from __future__ import annotations

import json
import os


def figure(width: float, height: float):
    """A matplotlib Figure of `width` × `height` inches, constrained layout."""
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def write(out_dir: str, name: str, fig, numbers: dict) -> None:
    """`out_dir/name.png` (150 dpi) and `out_dir/name.json`; says so on stdout."""
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(os.path.join(out_dir, f"{name}.png"), dpi=150)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(numbers, f, indent=1, allow_nan=True)
    print(f"wrote {os.path.join(out_dir, name)}.png and .json")
