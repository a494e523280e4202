"""Why an MPPS is linked to no scheduled step: a few kinds of reason, kept as one English
sentence each (several joined by "; ") and read back by kind, so that a page can say
them in its reader's language while the store, CLI and audit keep one text."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

#: Each kind of reason as written; `{name!r}` values are quoted, `{name}` ones are not.
FORMS = {
    "disagrees_at_step": "{attribute} disagrees: MPPS {performed!r}, scheduled {scheduled!r} (step {sps_id})",
    "disagrees": "{attribute} disagrees: MPPS {performed!r}, scheduled {scheduled!r}",
    "ambiguous": "{attribute} {value!r} names steps of {count} orders",
    "no_match": "no scheduled step on the worklist matches the SPS ID or accession number quoted",
    "unscheduled": "unscheduled: no scheduled step quoted",
}
SEPARATOR = "; "
_FIELD = re.compile(r"\{(\w+)(!r)?\}")


@dataclass(frozen=True)
class Reason:
    """One reason: its kind (a key of FORMS) and the values it names."""

    kind: str
    values: dict[str, str]

    def __str__(self) -> str:
        return FORMS[self.kind].format(**self.values)


def _pattern(form: str) -> re.Pattern[str]:
    parts, last = [], 0
    for field in _FIELD.finditer(form):
        parts.append(re.escape(form[last : field.start()]))
        name = field.group(1)
        parts.append(f"(?P<{name}>'.*?'|\".*?\")" if field.group(2) else f"(?P<{name}>.*?)")
        last = field.end()
    parts.append(re.escape(form[last:]))
    return re.compile("".join(parts))


_PATTERNS = {kind: _pattern(form) for kind, form in FORMS.items()}


def joined(reasons: list[Reason]) -> str:
    return SEPARATOR.join(dict.fromkeys(map(str, reasons)))


def read(text: str) -> list[Reason] | None:
    """The reasons a stored text gives; None when a part is none of the kinds (an older
    or hand-written text: show it as it is)."""
    reasons = []
    for part in filter(None, text.split(SEPARATOR)):
        found = next(((k, m) for k, p in _PATTERNS.items() if (m := p.fullmatch(part))), None)
        if found is None:
            return None
        kind, match = found
        try:
            values = {name: _value(FORMS[kind], name, value) for name, value in match.groupdict().items()}
        except (ValueError, SyntaxError):  # a quote inside a value split it elsewhere
            return None
        reasons.append(Reason(kind, values))
    return reasons


def _value(form: str, name: str, written: str) -> str:
    """A `!r` value as repr wrote it, read back (literals only); others as they are."""
    return str(ast.literal_eval(written)) if f"{{{name}!r}}" in form else written
