"""A small document model: headings, paragraphs and tables, rendered to Markdown (and
from Markdown to HTML). The table of contents comes from the headings, so it is
always complete."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import markdown

Row = Sequence[object]


def _cell(value: object) -> str:
    """A table cell: pipes escaped, line breaks flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    """The id python-markdown's toc extension gives a heading (its default slugify)."""
    slug = re.sub(r"[^\w\s-]", "", title).strip().lower()
    return re.sub(r"[-\s]+", "-", slug)


@dataclass
class Document:
    title: str
    _blocks: list[str] = field(default_factory=list)
    _headings: list[tuple[int, str]] = field(default_factory=list)
    _toc_at: int | None = None
    _toc_title: str = ""

    def heading(self, level: int, title: str) -> None:
        self._headings.append((level, title))
        self._blocks.append(f"{'#' * (level + 1)} {title}")

    def text(self, *paragraphs: str) -> None:
        self._blocks.extend(paragraphs)

    def bullets(self, items: Iterable[str]) -> None:
        self._blocks.append("\n".join(f"- {item}" for item in items))

    def table(self, headers: Row, rows: Iterable[Row]) -> None:
        lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        self._blocks.append("\n".join(lines))

    def table_of_contents(self, title: str = "Table of Contents") -> None:
        """Mark where the table of contents goes; it is written at render time."""
        self._toc_at, self._toc_title = len(self._blocks), title

    def _toc(self) -> str:
        return "\n".join(
            f"{'  ' * (level - 1)}- [{title}](#{_anchor(title)})" for level, title in self._headings if level <= 2
        )

    def to_markdown(self) -> str:
        blocks = list(self._blocks)
        if self._toc_at is not None:
            blocks[self._toc_at : self._toc_at] = [f"## {self._toc_title}", self._toc()]
        return "\n\n".join([f"# {self.title}", *blocks]) + "\n"

    def to_html(self) -> str:
        body = markdown.markdown(self.to_markdown(), extensions=["tables", "toc"], output_format="html")
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )


_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #999;padding:.2em .5em;text-align:left}"
    "th{background:#eee}code{font-size:90%}"
)
