"""`broker find` prints what any MWL SCP answered: the table lines up in a terminal with
kanji and kana, and an SCP's control characters never reach the operator's terminal."""

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from broker.dicom.mwl_scu import row, table
from broker.display import cells


def _answer(name: str, accession: str) -> Dataset:
    step = Dataset()
    step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepID = "CR", "CR01", "S1"
    answer = Dataset()
    answer.PatientName, answer.PatientID, answer.AccessionNumber = name, "JP0001", accession
    answer.ScheduledProcedureStepSequence = Sequence([step])
    return answer


def test_columns_line_up_in_terminal_cells_with_ideographs() -> None:
    answers = [_answer("YAMADA^TAROU=山田^太郎=ヤマダ^タロウ", "A1"), _answer("DOE^JOHN", "A2")]
    lines = table([row(answer) for answer in answers]).splitlines()
    widths = {cells(line[: line.index(accession)]) for line, accession in zip(lines[1:], ("A1", "A2"), strict=True)}
    assert len(widths) == 1, lines  # the Accession column starts in the same terminal cell


def test_control_characters_from_the_scp_are_shown_not_sent_to_the_terminal() -> None:
    printed = table([row(_answer("EVIL\x1b]0;owned\x07^X", "A\x1b[2J1"))])
    assert "\x1b" not in printed and "\x07" not in printed
    assert "EVIL␛]0;owned␇^X" in printed and "A␛[2J1" in printed
