"""The page opens on the site's calendar day (profile `time_zone`, DST by zoneinfo),
not the host's: a broker host on UTC serving a site in Tokyo showed yesterday's
worklist until 09:00 (issue #14, deliver 11: no naive `now()` for a local day)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from broker.web.page import site_today
from support.hl7peer import RisListener
from support.web import READ_TOKEN, client, web_broker, web_port

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
#: UTC+14 and UTC-11: at any moment one of them is on another date than the host.
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")


def test_the_page_opens_on_the_sites_day_not_the_hosts(tmp_path: Path, ris: RisListener) -> None:
    host_day = datetime.now().astimezone().date()
    zone = next(z for z in ZONES if datetime.now(ZoneInfo(z)).date() != host_day)
    profile = yaml.safe_load((PROFILES / "ihe-swf.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({**profile, "time_zone": zone}, allow_unicode=True), encoding="utf-8")
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'page.db'}", profile=str(path)) as broker:
        before = datetime.now(ZoneInfo(zone)).date()
        with client(web_port(broker), None, cookie=READ_TOKEN) as browser:
            html = browser.get("/").text
        after = datetime.now(ZoneInfo(zone)).date()
    assert any(f"<title>Worklist {day.isoformat()}" in html for day in (before, after)), html[:200]


def test_site_day_across_the_end_of_summer_time() -> None:
    """Berlin leaves UTC+2 at 01:00 UTC on 2026-10-25: the offset of each instant decides."""
    at = [datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 22, 30, tzinfo=UTC)]
    assert [site_today("Europe/Berlin", now) for now in at] == [date(2026, 10, 25), date(2026, 10, 25)]
    assert site_today("Europe/Berlin", datetime(2026, 10, 25, 23, 30, tzinfo=UTC)) == date(2026, 10, 26)
