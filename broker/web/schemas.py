"""JSON shapes of the REST API for the domain's orders and patients, read straight from
the domain objects' attributes (the store's flat read rows are served as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from broker.web.params import MAX_ID


class _FromDomain(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CodeOut(_FromDomain):
    value: str
    scheme: str
    meaning: str


class NameOut(_FromDomain):
    """The three DICOM PN component groups (Japanese: kanji in ideographic, kana in phonetic)."""

    alphabetic: str
    ideographic: str
    phonetic: str


class PatientOut(_FromDomain):
    patient_id: str
    issuer: str
    name: NameOut
    birth_date: str
    sex: str


class StepOut(_FromDomain):
    sps_id: str
    modality: str
    station_ae: str
    station_name: str
    start: datetime | None
    description: str
    protocol_codes: list[CodeOut]
    status: str


class ProcedureOut(_FromDomain):
    requested_procedure_id: str
    study_instance_uid: str
    description: str
    code: CodeOut | None
    priority: str
    steps: list[StepOut]


class OrderOut(_FromDomain):
    placer_order_number: str
    placer_application: str
    filler_order_number: str
    #: For an order made at the broker: the RIS's number for it (its NA answer to the
    #: SN), empty until then.
    assigned_placer_number: str
    assigned_placer_application: str
    accession_number: str
    referring_physician: str
    cancelled: bool
    patient: PatientOut
    procedures: list[ProcedureOut]


class ReplayOut(BaseModel):
    id: int
    answer: str
    error_code: str
    error: str


class RequeueIn(BaseModel):
    """Outbox message ids (dead letters) to requeue or skip."""

    ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(max_length=10_000)


class RequeueOut(BaseModel):
    requeued: int
    ids: list[int]


class SkipOut(BaseModel):
    skipped: int
    ids: list[int]


class ReconcileIn(BaseModel):
    accession_number: str
    requested_procedure_id: str = ""
    #: Link even to an order of another patient than the MPPS names (audited).
    force: bool = False
