"""JSON shapes of the REST API for the domain's orders and patients (the store's flat
read rows are served as they are)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep


class CodeOut(BaseModel):
    value: str
    scheme: str
    meaning: str

    @classmethod
    def of(cls, code: Code) -> CodeOut:
        return cls(value=code.value, scheme=code.scheme, meaning=code.meaning)


class NameOut(BaseModel):
    """The three DICOM PN component groups (Japanese: kanji in ideographic, kana in phonetic)."""

    alphabetic: str
    ideographic: str
    phonetic: str

    @classmethod
    def of(cls, name: PersonName) -> NameOut:
        return cls(alphabetic=name.alphabetic, ideographic=name.ideographic, phonetic=name.phonetic)


class PatientOut(BaseModel):
    patient_id: str
    issuer: str
    name: NameOut
    birth_date: str
    sex: str

    @classmethod
    def of(cls, p: Patient) -> PatientOut:
        return cls(
            patient_id=p.patient_id, issuer=p.issuer, name=NameOut.of(p.name), birth_date=p.birth_date, sex=p.sex
        )


class StepOut(BaseModel):
    sps_id: str
    modality: str
    station_ae: str
    station_name: str
    start: datetime | None
    description: str
    protocol_codes: list[CodeOut]
    status: str

    @classmethod
    def of(cls, s: ScheduledStep) -> StepOut:
        return cls(
            sps_id=s.sps_id, modality=s.modality, station_ae=s.station_ae, station_name=s.station_name,
            start=s.start, description=s.description, protocol_codes=[CodeOut.of(c) for c in s.protocol_codes],
            status=s.status.value,
        )  # fmt: skip


class ProcedureOut(BaseModel):
    requested_procedure_id: str
    study_instance_uid: str
    description: str
    code: CodeOut | None
    priority: str
    steps: list[StepOut]

    @classmethod
    def of(cls, rp: RequestedProcedure) -> ProcedureOut:
        return cls(
            requested_procedure_id=rp.requested_procedure_id, study_instance_uid=rp.study_instance_uid,
            description=rp.description, code=CodeOut.of(rp.code) if rp.code else None, priority=rp.priority,
            steps=[StepOut.of(s) for s in rp.steps],
        )  # fmt: skip


class OrderOut(BaseModel):
    placer_order_number: str
    placer_application: str
    filler_order_number: str
    accession_number: str
    referring_physician: str
    cancelled: bool
    patient: PatientOut
    procedures: list[ProcedureOut]

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        return cls(
            placer_order_number=o.placer_order_number, placer_application=o.placer_application,
            filler_order_number=o.filler_order_number, accession_number=o.accession_number,
            referring_physician=o.referring_physician, cancelled=o.cancelled, patient=PatientOut.of(o.patient),
            procedures=[ProcedureOut.of(rp) for rp in o.procedures],
        )  # fmt: skip


class ReplayOut(BaseModel):
    id: int
    answer: str
    error_code: str
    error: str


class RequeueIn(BaseModel):
    ids: list[int]


class RequeueOut(BaseModel):
    requeued: int


class ReconcileIn(BaseModel):
    accession_number: str
    requested_procedure_id: str = ""
