#!/usr/bin/env python3
"""Prints criterion's latest results as a markdown table.

    cargo bench --locked --bench filter -- --warm-up-time 1 --measurement-time 3
    python3 bench/criterion-table.py              # every benchmark under target/criterion
    python3 bench/criterion-table.py filter gate  # only names starting with filter/ or gate/

Reads target/criterion/**/new/estimates.json (times in ns per iteration) and the
benchmark.json beside it (the benchmark's full name, e.g. `filter/parse/userName_eq`),
and prints `| benchmark | median | 95% CI |`, sorted by name. The CI is criterion's
bootstrap interval of the median. Criterion keeps the results of benchmarks that no
longer exist: delete target/criterion for a clean table.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def unit_for(ns: float) -> tuple[float, str]:
    """The largest unit in which the value is at least 1."""
    for scale, name in UNITS:
        if abs(ns) >= scale:
            return scale, name
    return UNITS[-1]


def fmt(value: float) -> str:
    """Three significant digits, without exponent notation."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def default_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "criterion"
    # bench/criterion-table.py → the repository root's target/.
    return Path(__file__).resolve().parent.parent / "target" / "criterion"


def load(root: Path) -> list[tuple[str, float, float, float, float]]:
    """(name, median, CI low, CI high, CI level) per benchmark, in ns."""
    rows = []
    for est_path in sorted(root.glob("**/new/estimates.json")):
        bench_path = est_path.with_name("benchmark.json")
        try:
            estimates = json.loads(est_path.read_text(encoding="utf-8"))
            median = estimates["median"]
            ci = median["confidence_interval"]
        except (OSError, ValueError, KeyError) as e:
            print(f"skipping {est_path}: {e}", file=sys.stderr)
            continue
        name = None
        try:
            name = json.loads(bench_path.read_text(encoding="utf-8")).get("full_id")
        except (OSError, ValueError):
            pass
        if not name:
            # No benchmark.json: the directory path (criterion replaced '/' with '_').
            name = est_path.parent.parent.relative_to(root).as_posix()
        rows.append(
            (
                name,
                float(median["point_estimate"]),
                float(ci["lower_bound"]),
                float(ci["upper_bound"]),
                float(ci.get("confidence_level", 0.95)),
            )
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "prefix",
        nargs="*",
        help="only benchmarks whose name is PREFIX or starts with PREFIX/",
    )
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="criterion's output directory (default: $CARGO_TARGET_DIR/criterion, else target/criterion)",
    )
    args = ap.parse_args()
    root = args.dir or default_dir()
    if not root.is_dir():
        print(f"no criterion results in {root}: run cargo bench first", file=sys.stderr)
        return 1
    rows = load(root)
    if args.prefix:
        rows = [
            r
            for r in rows
            if any(r[0] == p or r[0].startswith(p.rstrip("/") + "/") for p in args.prefix)
        ]
    if not rows:
        print(f"no benchmark results found under {root}", file=sys.stderr)
        return 1
    rows.sort(key=lambda r: r[0])
    levels = {r[4] for r in rows}
    level = f"{round(levels.pop() * 100)}% " if len(levels) == 1 else ""
    print(f"| benchmark | median | {level}CI |")
    print("|---|---:|---:|")
    for name, median, low, high, _ in rows:
        scale, unit = unit_for(median)
        print(
            f"| {name} | {fmt(median / scale)} {unit} "
            f"| {fmt(low / scale)} – {fmt(high / scale)} {unit} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
