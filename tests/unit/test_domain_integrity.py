"""Clinical integrity rules on in-memory fakes of the store ports (support/fakes.py): no
sockets, no database. The tests are in support/integrity_rules.py; the same run on the
real store in tests/integration/test_integrity_rules_store.py."""

from __future__ import annotations

import pytest

from support.fakes import FakeStore
from support.integrity_rules import (  # noqa: F401  (fixtures and tests pytest collects here)
    filler,
    manager,
    test_accession_of_an_active_order_refused_for_another_patient,
    test_accession_only_mpps_of_the_same_patient_starts_the_step,
    test_cancelled_or_discontinued_order_releases_its_accession,
    test_defect_1_accession_only_mpps_of_another_patient_links_nothing,
    test_defect_2_accession_links_to_the_active_order_not_the_cancelled_one,
    test_disagreement_keeps_the_mpps_as_an_exception_naming_the_attribute,
    test_issuer_absent_from_the_mpps_still_links,
    test_one_disagreeing_item_links_none_of_the_group,
    test_reconcile_finds_the_active_order_of_a_reused_accession,
    test_reconcile_takes_only_the_mpps_patients_order_unless_forced,
    test_refusal_names_the_field_the_profile_maps,
    test_study_uid_belongs_to_one_requested_procedure,
    test_two_orders_in_one_message_cannot_share_an_accession,
    test_unknown_command_is_refused_not_acknowledged,
    test_update_of_a_patient_not_held_is_refused_on_the_probe_alone,
)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()
