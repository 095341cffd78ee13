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


def table(rows: list[list], header: list[str]) -> str:
    """`rows` under `header` as aligned text columns; numbers to 4 significant digits."""
    cells = [header] + [[c if isinstance(c, str) else f"{c:.4g}" for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
