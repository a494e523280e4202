"""How a message changes the demographics the Order Filler holds (RAD-1, RAD-12, and
the PID of every order): HL7's update rule, field by field.

An empty field means "no change"; HL7's null `""` means "delete" (HL7 v2.5 2.5.3). A
person name changes group by group: a message that carries only the alphabetic
repetition (an order's PID with `YAMADA`) replaces that group and leaves the kanji and
kana groups as they are; a group goes only when the message deletes it. So no message
removes what it leaves out, ADT and orders alike.
"""

from __future__ import annotations

from broker.domain.model import Patient, PersonName

_GROUPS = ("alphabetic", "ideographic", "phonetic")


def _value(held: str, incoming: str, deleted: bool) -> str:
    if deleted:
        return ""
    return incoming or held


def merged_name(held: PersonName, incoming: PersonName, deleted: frozenset[str]) -> PersonName:
    """Each component group: deleted, replaced by the message's, or kept."""
    everything = "name" in deleted
    groups = {
        group: _value(getattr(held, group), getattr(incoming, group), everything or f"name.{group}" in deleted)
        for group in _GROUPS
    }
    return PersonName(**groups)


def merged(held: Patient, incoming: Patient) -> Patient:
    """The demographics `held` has once `incoming` (from a message) is applied; the
    identifiers stay `held`'s. Pure: the caller copies the result onto its record."""
    return Patient(
        patient_id=held.patient_id,
        issuer=held.issuer,
        name=merged_name(held.name, incoming.name, incoming.deleted),
        birth_date=_value(held.birth_date, incoming.birth_date, "birth_date" in incoming.deleted),
        sex=_value(held.sex, incoming.sex, "sex" in incoming.deleted),
    )
