"""Search keys for patient names: every component of every PN group (alphabetic,
ideographic, phonetic), folded so that what an operator types finds what the wire
carried. `YAMADA^TAROU=山田^太郎=ヤマダ^タロウ` is found by "yamada", "山田", "ヤマダ",
"やまだ" or half-width "ﾔﾏﾀﾞ".

Folding: NFKC (half-width kana and full-width Latin become their usual forms),
case folding, and hiragana as katakana. The keys are stored one per row
(`patient_name_keys`), so a search is an index range scan per typed word (prefix
match), not a scan of every patient.
"""

from __future__ import annotations

import re
import unicodedata

from broker.domain.model import PersonName

#: Upper bound of a prefix range: greater than any character that can follow it.
PREFIX_END = "\U0010ffff"
_HIRAGANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}
_SEPARATORS = re.compile(r"[\s^=,、・]+")
#: As long as the column holds; longer components are cut (a prefix still matches).
KEY_LENGTH = 200


def fold(text: str) -> str:
    """The form both stored keys and typed words take before they are compared."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_HIRAGANA)


def words(query: str) -> list[str]:
    """The words of a typed name, folded; each one must start some key of the name."""
    return [w[:KEY_LENGTH] for w in _SEPARATORS.split(fold(query)) if w]


def name_keys(name: PersonName) -> set[str]:
    """Each non-empty component of each group, and each group's components run together
    (so "山田太郎", typed without a space, finds 山田^太郎)."""
    keys: set[str] = set()
    for group in name.groups():
        parts = words(group)
        keys.update(parts)
        if len(parts) > 1:
            keys.add("".join(parts)[:KEY_LENGTH])
    return keys
