"""Write the table of the last chaos run into ``docs/reliability.md`` (``make chaos`` calls it).

The table sits between two marker comments; the prose around it is kept.
"""

from __future__ import annotations

from pathlib import Path

from tests.chaos.figures import REPO_ROOT, Figures, load_all

DOC = REPO_ROOT / "docs" / "reliability.md"
BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"


def table(rows: list[Figures]) -> str:
    lines = [
        "| scenario | fault | requests | failures | lost writes | duplicates | recovery "
        "| other figures | run at | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        recovery = "n/a" if row.recovery_s is None else f"{row.recovery_s:.2f} s"
        extra = ", ".join(f"{key} {value}" for key, value in row.extra.items()) or "-"
        lines.append(
            f"| `{row.scenario}` | {row.fault} | {row.requests} | {row.failures} | {row.lost_writes} "
            f"| {row.duplicates} | {recovery} | {extra} | {row.finished_at} | `{row.command}` |"
        )
    return "\n".join(lines)


def write(doc: Path = DOC) -> None:
    rows = load_all()
    text = doc.read_text() if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc} has no {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")
    print(f"{doc}: {len(rows)} scenarios")


if __name__ == "__main__":
    write()
