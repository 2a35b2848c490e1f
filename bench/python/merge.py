#!/usr/bin/env python3
"""Merge the per-mode results of both sides into compare.json and print one table.

Standard library only (runs on the system python3, not the benchmark venv).

    merge.py --results target/bench/results --out target/bench/compare.json

``<results>/<side>/<mode>.json`` is what ``<side> <mode> --json`` printed (side is
``rust`` or ``python``); ``<results>/<side>/<mode>.loadavg`` optionally holds
/proc/loadavg as read just before the section started. Every mode's top-level keys
other than ``detail`` are figures and go to the top of that side's object; its
``detail`` goes to ``<side>.detail.<mode>``. ``ratio`` is python/rust for every
numeric figure both sides have, with the same shape as the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

SIDES = ("rust", "python")
MODES = ("verify", "latency", "session", "memory", "throughput", "cold")

# (path, label, unit) of every figure of the contract, in table order.
FIGURES: list[tuple[str, str, str]] = [
    ("turn_us.plain.p50", "turn: plain reply, p50", "µs"),
    ("turn_us.plain.p99", "turn: plain reply, p99", "µs"),
    ("turn_us.tool.p50", "turn: tool call, p50", "µs"),
    ("turn_us.tool.p99", "turn: tool call, p99", "µs"),
    ("turn_us.handoff.p50", "turn: handoff, p50", "µs"),
    ("turn_us.handoff.p99", "turn: handoff, p99", "µs"),
    ("session_start_us", "session start incl. greeting, p50", "µs"),
    ("session_close_us", "session close, p50", "µs"),
    ("memory_kib_per_session.idle", "memory per session, idle after start", "KiB"),
    ("memory_kib_per_session.after_turns", "memory per session, after turns 1-5", "KiB"),
    ("turns_per_s.1", "throughput, 1 session", "turns/s"),
    ("turns_per_s.10", "throughput, 10 concurrent sessions", "turns/s"),
    ("turns_per_s.100", "throughput, 100 concurrent sessions", "turns/s"),
    ("turns_per_s.1000", "throughput, 1,000 concurrent sessions", "turns/s"),
    # further turns_per_s.<N> (e.g. 10000) are accepted and shown after these
    ("cold_start_ms", "cold start: exec to first completed turn", "ms"),
]


def get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def put(d: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        d = d.setdefault(part, {})
    d[parts[-1]] = value


def leaves(d: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the numeric leaves of d (the figures; ``detail`` excluded)."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            if not prefix and k == "detail":
                continue
            out.extend(leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d):
        out.append(prefix)
    return out


def load_side(results: str, side: str) -> tuple[dict, list[str]]:
    """One side's merged object, plus warnings about the JSON contract."""
    merged: dict[str, Any] = {}
    warnings: list[str] = []
    folder = os.path.join(results, side)
    if not os.path.isdir(folder):
        return merged, warnings
    for mode in MODES:
        path = os.path.join(folder, mode + ".json")
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                text = f.read().strip()
            doc = json.loads(text.splitlines()[-1]) if text else None
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except (ValueError, IndexError) as e:
            warnings.append(f"{side}: {mode}.json unreadable ({e})")
            continue
        detail = doc.pop("detail", None)
        if mode == "verify":  # verify has no figures; keep it all as detail
            merged.setdefault("detail", {})["verify"] = {**doc, **({"detail": detail} if detail else {})}
            continue
        for key, value in doc.items():
            if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key].update(value)
            else:
                merged[key] = value
        d = merged.setdefault("detail", {})
        d[mode] = detail if detail is not None else {}
        la = os.path.join(folder, mode + ".loadavg")
        if os.path.exists(la):
            with open(la) as f:
                d[mode]["loadavg_before_section"] = [float(x) for x in f.read().split()[:3]]
    if merged:
        known = {p for p, _l, _u in FIGURES}
        have = set(leaves(merged))
        for p in sorted(have - known):
            if p.startswith("turns_per_s.") and p.split(".", 1)[1].isdigit():
                continue
            warnings.append(f"{side}: figure '{p}' is not part of the contract (put extras under detail)")
    return merged, warnings


def ratio_tree(rust: dict, python: dict) -> dict:
    out: dict[str, Any] = {}
    for path in leaves(python):
        r, p = get(rust, path), get(python, path)
        if isinstance(r, (int, float)) and isinstance(p, (int, float)) and r:
            put(out, path, float(f"{p / r:.4g}"))
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if not isinstance(v, (int, float)):
        return str(v)
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r: Any, p: Any) -> str:
    if isinstance(r, (int, float)) and isinstance(p, (int, float)) and r:
        x = p / r
        if x >= 100:
            return f"{x:,.0f}×"
        return f"{x:.1f}×" if x >= 10 else (f"{x:.2f}×" if x >= 0.1 else f"{x:.2g}×")
    return "—"


def memory_rows(rust: dict, python: dict) -> list[tuple[str, Any, Any]]:
    """Per-session-count memory rows from detail.memory.by_sessions (optional)."""
    rb = get(rust, "detail.memory.by_sessions") or {}
    pb = get(python, "detail.memory.by_sessions") or {}
    rows = []
    for n in sorted(set(rb) | set(pb), key=lambda x: int(x)):
        for key, what in (("idle", "idle"), ("after_turns", "after turns 1-5")):
            rows.append((f"  {int(n):>7,} sessions, {what}", get(rb, f"{n}.{key}"),
                         get(pb, f"{n}.{key}")))
    return rows


def headline_n(side: dict) -> Any:
    return get(side, "detail.memory.headline_sessions")


def figures(rust: dict, python: dict) -> list[tuple[str, str, str]]:
    """The contract's figures plus any extra turns_per_s.<N> either side reported."""
    extra = sorted({n for side in (rust, python) for n in (side.get("turns_per_s") or {})
                    if n.isdigit() and f"turns_per_s.{n}" not in {p for p, _l, _u in FIGURES}},
                   key=int)
    out = []
    for fig in FIGURES:
        out.append(fig)
        if fig[0] == "turns_per_s.1000":
            out.extend((f"turns_per_s.{n}", f"throughput, {int(n):,} concurrent sessions",
                        "turns/s") for n in extra)
    return out


def print_table(rust: dict, python: dict, notes: list[str]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    for path, label, unit in figures(rust, python):
        if path.startswith("memory_kib_per_session"):
            nr, np_ = headline_n(rust), headline_n(python)
            if nr and np_ and nr != np_:
                label += f" (rust at {nr:,}, python at {np_:,} sessions)"
            elif nr or np_:
                label += f" (at {(nr or np_):,} sessions)"
        r, p = get(rust, path), get(python, path)
        rows.append((f"{label} [{unit}]", fmt(r), fmt(p), fmt_ratio(r, p)))
    mem = memory_rows(rust, python)
    if mem:
        rows.append(("memory per session by session count [KiB]", "", "", ""))
        for label, r, p in mem:
            rows.append((label, fmt(r), fmt(p), fmt_ratio(r, p)))
    head = ("figure", "rust", "python", "python/rust")
    w = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    line = "-" * (sum(w) + 9)
    print(line)
    print(f"{head[0]:<{w[0]}} | {head[1]:>{w[1]}} | {head[2]:>{w[2]}} | {head[3]:>{w[3]}}")
    print(line)
    for row in rows:
        print(f"{row[0]:<{w[0]}} | {row[1]:>{w[1]}} | {row[2]:>{w[2]}} | {row[3]:>{w[3]}}")
    print(line)
    print("python/rust > 1 means Rust is better for times and memory; "
          "for turns/s it means Python is faster.")
    for n in notes:
        print(n)


def load_notes(side_name: str, side: dict) -> list[str]:
    out = []
    for mode in MODES[1:]:
        d = get(side, f"detail.{mode}")
        if not isinstance(d, dict):
            continue
        la = d.get("loadavg_before_section")
        fb = get(d, "load.foreign_busy_cores")
        if fb is None and isinstance(d.get("runs"), (dict, list)):
            runs = d["runs"].values() if isinstance(d["runs"], dict) else d["runs"]
            vals = [get(r, "load.foreign_busy_cores") for r in runs]
            vals = [v for v in vals if isinstance(v, (int, float))]
            fb = max(vals) if vals else None
        bits = []
        if la:
            bits.append(f"loadavg {la[0]:.2f}")
        if fb is not None:
            bits.append(f"other processes {fb:.2f} cores")
        if bits:
            out.append(f"{mode} ({', '.join(bits)})")
    return [f"load, {side_name}: " + "; ".join(out)] if out else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    opt = ap.parse_args()

    sides: dict[str, dict] = {}
    warnings: list[str] = []
    for side in SIDES:
        sides[side], w = load_side(opt.results, side)
        warnings.extend(w)
    doc = {"rust": sides["rust"], "python": sides["python"],
           "ratio": ratio_tree(sides["rust"], sides["python"])}
    os.makedirs(os.path.dirname(os.path.abspath(opt.out)), exist_ok=True)
    with open(opt.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    notes = []
    for side in SIDES:
        if sides[side]:
            missing = [p for p, _l, _u in FIGURES if get(sides[side], p) is None]
            if missing:
                notes.append(f"{side}: no value for {', '.join(missing)}")
            notes.extend(load_notes(side, sides[side]))
        else:
            notes.append(f"{side}: no results")
    nr, np_ = headline_n(sides["rust"]), headline_n(sides["python"])
    if nr and np_ and nr != np_:
        notes.append(f"warning: memory_kib_per_session is at {nr} sessions for rust but {np_} "
                     "for python; its ratio compares different session counts")
    notes.extend(warnings)
    notes.append(f"written: {opt.out}")
    print_table(sides["rust"], sides["python"], notes)
    if not sides["rust"] and not sides["python"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
