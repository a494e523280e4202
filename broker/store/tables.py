"""Table definitions, and the imperative mapping of the domain's records onto them.

Imperative mapping keeps `broker.domain` free of SQLAlchemy; what is mapped is a
subclass of each entity (store/records.py), so the domain's own classes are not
instrumented.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapper, composite, registry, relationship
from sqlalchemy.types import TypeDecorator

from broker.domain.model import Code, Patient, PersonName, PpsStatus, StepReference, StepStatus
from broker.store.name_keys import KEY_LENGTH, name_keys
from broker.store.records import (
    StoredOrder,
    StoredPatient,
    StoredPerformedStep,
    StoredProcedure,
    StoredStep,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class CodeList(TypeDecorator[list[Code]]):
    """A list of coded entries stored as JSON."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[Code] | None, dialect: Dialect) -> str:
        return json.dumps([[c.value, c.scheme, c.meaning] for c in value or []], ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[Code]:
        return [Code(*item) for item in json.loads(value or "[]")]


class OptionalCode(TypeDecorator[Code | None]):
    """One coded entry or none, stored as JSON."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Code | None, dialect: Dialect) -> str:
        return json.dumps([value.value, value.scheme, value.meaning] if value else None, ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Code | None:
        item = json.loads(value or "null")
        return Code(*item) if item else None


class ReferenceList(TypeDecorator[list[StepReference]]):
    """The scheduled-step references an MPPS quotes, stored as JSON."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[StepReference] | None, dialect: Dialect) -> str:
        return json.dumps([vars(r) for r in value or []], ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[StepReference]:
        return [StepReference(**item) for item in json.loads(value or "[]")]


def _status_type(enum_class: type[enum.Enum]) -> Enum:
    """Enum stored as its DICOM spelling (the value, e.g. 'IN PROGRESS') in a VARCHAR."""
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def _pk() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


patients = Table(
    "patients",
    metadata,
    _pk(),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False, default=""),
    Column("name_alphabetic", String(200), nullable=False, default=""),
    Column("name_ideographic", String(200), nullable=False, default=""),
    Column("name_phonetic", String(200), nullable=False, default=""),
    Column("birth_date", String(8), nullable=False, default=""),
    Column("sex", String(16), nullable=False, default=""),
    UniqueConstraint("patient_id", "issuer"),
)

#: The partial index's condition, also written into the query that reads by it (a
#: planner uses a partial index only when the query states its condition).
ASSIGNED_NUMBERED = text("assigned_placer_number != ''")

_BYTEWISE = String(KEY_LENGTH).with_variant(String(KEY_LENGTH, collation="C"), "postgresql")

#: One row per search key of a patient's name (broker.store.name_keys), kept by the
#: mapper events below; compared byte-wise (collation "C" on PostgreSQL) so that a
#: prefix is an index range.
patient_name_keys = Table(
    "patient_name_keys",
    metadata,
    Column("patient_pk", ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True),
    Column("name_key", _BYTEWISE, primary_key=True),
    Index(None, "name_key", "patient_pk"),
    sqlite_with_rowid=False,  # its key is the table: one b-tree fewer to write (issue #17)
)

orders = Table(
    "orders",
    metadata,
    _pk(),
    Column("patient_pk", ForeignKey("patients.id"), nullable=False, index=True),
    Column("placer_order_number", String(64), nullable=False),
    Column("placer_application", String(64), nullable=False, default=""),
    Column("filler_order_number", String(64), nullable=False, default=""),
    Column("accession_number", String(16), nullable=False, index=True),
    Column("referring_physician", String(200), nullable=False, default=""),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("discontinued", Boolean, nullable=False, default=False),
    Column("admission_id", String(64), nullable=False, default=""),
    Column("requesting_physician", String(200), nullable=False, default=""),
    Column("requesting_service", String(64), nullable=False, default=""),
    Column("placer_facility", String(64), nullable=False, default=""),
    Column("assigned_placer_number", String(64), nullable=False, default="", server_default=""),
    Column("assigned_placer_application", String(64), nullable=False, default="", server_default=""),
    UniqueConstraint("placer_application", "placer_order_number"),
    #: Only the orders the placer numbered (NA): the others, nearly all, write no entry.
    Index(
        None,
        "assigned_placer_application",
        "assigned_placer_number",
        sqlite_where=ASSIGNED_NUMBERED,
        postgresql_where=ASSIGNED_NUMBERED,
    ),
)

requested_procedures = Table(
    "requested_procedures",
    metadata,
    _pk(),
    Column("order_pk", ForeignKey("orders.id"), nullable=False, index=True),
    Column("requested_procedure_id", String(16), nullable=False, index=True),
    Column("study_instance_uid", String(64), nullable=False, index=True),
    Column("description", String(200), nullable=False, default=""),
    Column("code", OptionalCode, nullable=True),
    Column("priority", String(16), nullable=False, default=""),
)

scheduled_steps = Table(
    "scheduled_steps",
    metadata,
    _pk(),
    Column("procedure_pk", ForeignKey("requested_procedures.id"), nullable=False, index=True),
    Column("sps_id", String(16), nullable=False, index=True),
    Column("modality", String(16), nullable=False),
    Column("station_ae", String(16), nullable=False, default=""),
    Column("station_name", String(16), nullable=False, default=""),
    Column("start", DateTime, nullable=True),
    Column("description", String(200), nullable=False, default=""),
    Column("protocol_codes", CodeList, nullable=False, default="[]"),
    Column("performing_physician", String(200), nullable=False, default=""),
    Column("location", String(16), nullable=False, default=""),
    Column("status", _status_type(StepStatus), nullable=False),
    Index(None, "station_ae", "start"),
    Index(None, "modality", "start"),
    Index(None, "start"),
)

performed_steps = Table(
    "performed_steps",
    metadata,
    _pk(),
    Column("sop_instance_uid", String(64), nullable=False, unique=True),
    Column("status", _status_type(PpsStatus), nullable=False),
    Column("references", ReferenceList, nullable=False, default="[]"),
    Column("attributes", Text, nullable=False),
    Column("performed_station_ae", String(16), nullable=False, default=""),
    Column("patient_id", String(64), nullable=False, default=""),
    Column("patient_issuer", String(64), nullable=False, default=""),
    #: Why an MPPS is linked to no scheduled step (shown with the exceptions).
    Column("unlinked_reason", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=True, default=datetime.now),
    Column("flagged_at", DateTime, nullable=True),  # left IN PROGRESS too long
)

archived_orders = Table(
    "archived_orders",
    metadata,
    _pk(),
    Column("placer_application", String(64), nullable=False),
    Column("placer_order_number", String(64), nullable=False),
    Column("accession_number", String(16), nullable=False, index=True),
    Column("archived_at", DateTime, nullable=False),
    Column("record", Text, nullable=False),  # the order, its steps and MPPS as JSON
)

performed_step_links = Table(
    "performed_step_links",
    metadata,
    Column("performed_pk", ForeignKey("performed_steps.id"), primary_key=True),
    Column("step_pk", ForeignKey("scheduled_steps.id"), primary_key=True),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    _pk(),
    Column("sender", String(200), nullable=False),
    Column("control_id", String(199), nullable=False),  # MSH-10 is ST 199 from v2.5
    Column("message_type", String(16), nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("answer", String(2), nullable=False),
    Column("error_code", String(8), nullable=False, default=""),
    Column("error_location", String(32), nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    UniqueConstraint("sender", "control_id"),
)

#: The orders an accepted inbound message applied to (an order's HL7 history).
inbound_message_orders = Table(
    "inbound_message_orders",
    metadata,
    Column("message_pk", ForeignKey("inbound_messages.id", ondelete="CASCADE"), primary_key=True),
    Column("placer_application", String(64), primary_key=True),
    Column("placer_order_number", String(64), primary_key=True),
    Index(None, "placer_application", "placer_order_number"),
    sqlite_with_rowid=False,
)

outbox = Table(
    "outbox",
    metadata,
    _pk(),
    Column("destination", String(64), nullable=False),
    Column("ordering_key", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    #: The destination's last answer: HL7 MSA-1 (AA, AE, AR, ...) or a DIMSE status
    #: (0xA700), its text (MSA-3, Error Comment) and the ERR segments as received.
    Column("answer_code", String(16), nullable=False, default="", server_default=""),
    Column("answer_text", Text, nullable=False, default="", server_default=""),
    Column("answer_error", Text, nullable=False, default="", server_default=""),
    Index(None, "state", "next_attempt_at"),
    Index(None, "destination", "ordering_key", "id"),
    Index(None, "ordering_key"),  # one order's outbound messages (its page)
)

sequences = Table(
    "sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

#: When each once-per-database job last ran, and how often (housekeeping claims its
#: round here, so brokers sharing the database run it once per interval between them).
job_runs = Table(
    "job_runs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_run_at", DateTime, nullable=False),
    Column("runs", Integer, nullable=False),
)


def _map(mapper: registry) -> None:
    mapper.map_imperatively(
        StoredPatient,
        patients,
        properties={
            "name": composite(
                PersonName,
                patients.c.name_alphabetic,
                patients.c.name_ideographic,
                patients.c.name_phonetic,
            )
        },
    )
    mapper.map_imperatively(StoredStep, scheduled_steps, properties={"_id": scheduled_steps.c.id})
    mapper.map_imperatively(
        StoredProcedure,
        requested_procedures,
        properties={
            "steps": relationship(
                StoredStep, cascade="all, delete-orphan", order_by=scheduled_steps.c.id, lazy="selectin"
            ),
        },
    )
    mapper.map_imperatively(
        StoredOrder,
        orders,
        properties={
            "patient": relationship(StoredPatient, lazy="joined"),
            "procedures": relationship(
                StoredProcedure,
                cascade="all, delete-orphan",
                order_by=requested_procedures.c.id,
                lazy="selectin",
            ),
        },
    )
    mapper.map_imperatively(
        StoredPerformedStep,
        performed_steps,
        properties={
            "linked_steps": relationship(StoredStep, secondary=performed_step_links),
        },
    )


def name_key_rows(patient_pk: int, name: PersonName) -> list[dict[str, object]]:
    """The rows of a patient's search keys, in a stable order."""
    return [{"patient_pk": patient_pk, "name_key": key} for key in sorted(name_keys(name))]


def write_name_keys(connection: Connection, patient_pk: int, name: PersonName, *, new: bool = False) -> None:
    """A patient's search keys follow its name in the same transaction, whoever wrote it:
    the ORM (the mapper events below) or the HL7 intake's Core statements (repositories,
    which run the same on the driver's cursor). A `new` patient has no keys to replace,
    even on a reused row id (a deleted patient's keys went with it: ON DELETE CASCADE):
    one statement fewer per new patient."""
    keys = patient_name_keys.c
    if not new:
        connection.execute(patient_name_keys.delete().where(keys.patient_pk == patient_pk))
    rows = name_key_rows(patient_pk, name)
    if rows:
        connection.execute(patient_name_keys.insert(), rows)


def _write_new_name_keys(mapper: Mapper[Patient], connection: Connection, patient: Patient) -> None:
    (patient_pk,) = mapper.primary_key_from_instance(patient)
    write_name_keys(connection, patient_pk, patient.name, new=True)


def _write_name_keys(mapper: Mapper[Patient], connection: Connection, patient: Patient) -> None:
    (patient_pk,) = mapper.primary_key_from_instance(patient)
    write_name_keys(connection, patient_pk, patient.name)


mapper_registry = registry(metadata=metadata)
_map(mapper_registry)
event.listen(StoredPatient, "after_insert", _write_new_name_keys)
event.listen(StoredPatient, "after_update", _write_name_keys)
