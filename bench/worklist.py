"""The synthetic worklist every SCP serves, and the queries every SCP is asked.

One item is one order with one Requested Procedure and one Scheduled Procedure Step.
The same `Item` yields the HL7 ORM^O01 NW that puts it into the broker and the DCMTK
dump that `dump2dcm` turns into the `.wl` file wlmscpfs and Orthanc read, so the three
SCPs hold the same worklist and return the same answers.

Layout: 20 CT stations, 10 steps per station per day, so a station's day always holds
10 items however many days the worklist spans (1k items = 5 days, 10k = 50 days). The
filtered query (one station, one day) therefore always has 10 answers: its time shows
how the SCP's cost grows with the size of the worklist, not with the answer. The
universal query returns everything: its time shows the per-answer cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pydicom.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]
ORDER_SAMPLE = ROOT / "hl7" / "rad-2-placer-order" / "orm_o01_nw.hl7"

STATIONS = 20
STEPS_PER_STATION_DAY = 10
ITEMS_PER_DAY = STATIONS * STEPS_PER_STATION_DAY
FIRST_DAY = date(2026, 12, 1)
FIRST_SLOT = time(8, 0)
SLOT = timedelta(minutes=30)

#: The station the filtered query asks for.
QUERY_STATION = "CT07"

# Values of the sample message that every item keeps (the broker maps them as below).
PATIENT_NAME_SUFFIX = "^JOHN^Q"
ISSUER = "HOSPITAL"
BIRTH_DATE = "19700101"
SEX = "M"
REFERRING = "WELBY^MARCUS"  # XCN REF01^WELBY^MARCUS → PN family^given
CODE = ("CTCHEST", "LOCAL", "CT Chest")  # value, scheme, meaning
PRIORITY = "R"  # OBR-27.6, passed through as the broker stores it
MODALITY = "CT"


@dataclass(frozen=True)
class Item:
    """Worklist item number `index`; every identifier is derived from it."""

    index: int

    @property
    def patient_id(self) -> str:
        return f"P{self.index:08d}"

    @property
    def patient_name(self) -> str:
        return f"DOE{self.index}{PATIENT_NAME_SUFFIX}"

    @property
    def placer(self) -> str:
        return f"PO{self.index:08d}"

    @property
    def filler(self) -> str:
        return f"FO{self.index:08d}"

    @property
    def accession(self) -> str:
        return f"A{self.index:08d}"

    @property
    def requested_procedure_id(self) -> str:
        return f"RP{self.index:08d}"

    @property
    def sps_id(self) -> str:
        return f"SPS{self.index:08d}"

    @property
    def study_uid(self) -> str:
        return f"1.2.392.200036.9999.1.{self.index + 1}"

    @property
    def station(self) -> str:
        return f"CT{self.index % ITEMS_PER_DAY % STATIONS + 1:02d}"

    @property
    def start(self) -> datetime:
        day = FIRST_DAY + timedelta(days=self.index // ITEMS_PER_DAY)
        slot = self.index % ITEMS_PER_DAY // STATIONS
        return datetime.combine(day, FIRST_SLOT) + slot * SLOT


def days_for(size: int) -> int:
    return max(1, -(-size // ITEMS_PER_DAY))


def query_day(size: int) -> date:
    """The day the filtered query asks for: the middle of the worklist."""
    return FIRST_DAY + timedelta(days=days_for(size) // 2)


def expected_filtered(size: int) -> int:
    """Answers to the filtered query for a worklist of `size` items."""
    first = (query_day(size) - FIRST_DAY).days * ITEMS_PER_DAY
    return sum(1 for i in range(first, min(size, first + ITEMS_PER_DAY)) if Item(i).station == QUERY_STATION)


# --- HL7: the RAD-2 sample with this item's identifiers ----------------------------


def _sample_text() -> str:
    return ORDER_SAMPLE.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r")


_SAMPLE = _sample_text()


def order_message(item: Item, control_id: str) -> bytes:
    """The sample ORM^O01 NW with this item's identifiers; the station goes in OBR-21
    (Filler Field 2), which `bench/profile.yaml` maps to Scheduled Station AE Title."""
    start = item.start.strftime("%Y%m%d%H%M%S")
    text = (
        _SAMPLE.replace("ORM0001", control_id)
        .replace("PAT001", item.patient_id)
        .replace("DOE^JOHN^Q", item.patient_name)
        .replace("PO1001", item.placer)
        .replace("FO1001", item.filler)
        .replace("ACC1001", item.accession)
        .replace("RP1001", item.requested_procedure_id)
        .replace("SPS1001|", f"{item.sps_id}|{item.station}")
        .replace("20261123100000", start)
        .replace("1.2.392.200036.9999.1.1001", item.study_uid)
    )
    return text.encode("ascii")


# --- DICOM: the same item as a DCMTK dump (for dump2dcm) ---------------------------


def dump(item: Item) -> str:
    """The worklist item in dcmdump text form, with the attributes the broker returns."""
    code = "\n".join(
        [
            "(fffe,e000) -",
            f"(0008,0100) SH [{CODE[0]}]",
            f"(0008,0102) SH [{CODE[1]}]",
            f"(0008,0104) LO [{CODE[2]}]",
            "(fffe,e00d) -",
            "(fffe,e0dd) -",
        ]
    )
    return "\n".join(
        [
            f"(0008,0050) SH [{item.accession}]",
            f"(0008,0090) PN [{REFERRING}]",
            "(0008,1110) SQ",
            "(fffe,e0dd) -",
            "(0008,1120) SQ",
            "(fffe,e0dd) -",
            f"(0010,0010) PN [{item.patient_name}]",
            f"(0010,0020) LO [{item.patient_id}]",
            f"(0010,0021) LO [{ISSUER}]",
            f"(0010,0030) DA [{BIRTH_DATE}]",
            f"(0010,0040) CS [{SEX}]",
            f"(0020,000d) UI [{item.study_uid}]",
            f"(0032,1060) LO [{CODE[2]}]",
            "(0032,1064) SQ",
            code,
            "(0040,0100) SQ",
            "(fffe,e000) -",
            f"(0008,0060) CS [{MODALITY}]",
            f"(0040,0001) AE [{item.station}]",
            f"(0040,0002) DA [{item.start:%Y%m%d}]",
            f"(0040,0003) TM [{item.start:%H%M%S}]",
            "(0040,0006) PN []",
            f"(0040,0007) LO [{CODE[2]}]",
            "(0040,0008) SQ",
            code,
            f"(0040,0009) SH [{item.sps_id}]",
            "(0040,0010) SH []",
            "(0040,0011) SH []",
            "(0040,0020) CS [SCHEDULED]",
            "(fffe,e00d) -",
            "(fffe,e0dd) -",
            f"(0040,1001) SH [{item.requested_procedure_id}]",
            f"(0040,1003) SH [{PRIORITY}]",
            "",
        ]
    )


#: Tags `dump` uses, plus the file meta group: the trimmed DCMTK dictionary needs these.
DUMP_TAGS = frozenset(
    line.split(")")[0] + ")"
    for line in dump(Item(0)).splitlines()
    if line.startswith("(") and not line.startswith("(fffe")
)


# --- The two queries ---------------------------------------------------------------


def query(station: str = "", day: date | None = None) -> Dataset:
    """A modality's MWL query: the usual return keys, matching on station and date
    when given (empty = universal matching)."""
    step = Dataset()
    step.Modality = ""
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = day.strftime("%Y%m%d") if day else ""
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProcedureStepID = ""
    ds = Dataset()
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = ""
    ds.RequestedProcedureDescription = ""
    ds.RequestedProcedureID = ""
    ds.RequestedProcedurePriority = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def filtered_query(size: int) -> Dataset:
    return query(QUERY_STATION, query_day(size))


def universal_query() -> Dataset:
    return query()
