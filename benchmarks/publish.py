"""Where every benchmark's Markdown result goes: printed, and written under results/."""

from __future__ import annotations

from pathlib import Path


def publish(lines: list[str], out: Path, name: str) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(text)
