"""The console in Japanese (#18 item 6): a browser asking for Japanese gets the sign-in
page, the desk, the order form and the worklist lab in Japanese, headings and all,
with no English word left on a page that shows no data; what a page answers (a
refusal, a form's errors) is in Japanese too. English stays the
language of a browser that asks for neither."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from support.brokers import module_broker
from support.dicompeer import mpps
from support.hl7peer import RisListener
from support.mpps import n_create
from support.page_words import NAMES, latin_words
from support.web import ADMIN_TOKEN, READ_TOKEN, client, web_broker, web_port, web_section

JAPANESE = {"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"}
#: Syntax the lab's hints show as it is typed (query keys, a date range, `today`).
SYNTAX = NAMES | {"Keyword", "value", "Sequence", "YYYYMMDD", "today"}


@pytest.fixture(scope="module")
def empty_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """One broker for the module, with no data: whatever Latin word a page shows is the page's own."""
    with module_broker(request, "sqlite", web=web_section()) as broker:
        yield broker


def test_sign_in_and_desk_in_japanese(empty_broker: Broker) -> None:
    port = web_port(empty_broker)
    with client(port, None) as anonymous:
        login = anonymous.get("/login", headers=JAPANESE).text
        wrong = anonymous.post("/login", data={"token": "not-a-token"}, headers=JAPANESE).text
    assert '<html lang="ja">' in login and "<title>ログイン · swf broker</title>" in login
    assert "API トークンでログインしてください" in login and latin_words(login) == []
    assert "このトークンは無効です" in wrong
    with client(port, None, cookie=ADMIN_TOKEN) as admin:
        desk = admin.get("/desk", headers=JAPANESE).text
        english = admin.get("/desk").text
    assert "<h1>判断が必要な項目</h1>" in desk and "<h2>配信不能" in desk
    assert "<h2>取り込み拒否 HL7 メッセージ</h2>" in desk and "<h2>未照合の MPPS</h2>" in desk
    assert latin_words(desk) == [], latin_words(desk)
    assert "<h1>Needs a decision</h1>" in english and "判断" not in english


def test_order_form_lab_and_refusals_in_japanese(empty_broker: Broker) -> None:
    port = web_port(empty_broker)
    with client(port, None, cookie=ADMIN_TOKEN) as admin:
        form = admin.get("/orders/new", headers=JAPANESE)
        lab = admin.get("/lab", headers=JAPANESE).text
        token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        fields = {"form_token": token, "patient_id": "", "modality": "CT", "date": "2026-12-03", "time": "09:00"}
        refused = admin.post("/orders/new", data=fields, headers=JAPANESE)
        expired = admin.post("/orders/new", data={**fields, "form_token": "0" * 64}, headers=JAPANESE)
    assert "<h1>HL7 によらない検査オーダの予約</h1>" in form.text and "オーダを予約する" in form.text
    assert ">至急 (S)</option>" in form.text and ">通常 (R)</option>" in form.text  # HL7 table 0027
    assert "<h1>ワークリスト検証 · このモダリティには何が見えるか</h1>" in lab
    assert latin_words(lab, SYNTAX) == [], latin_words(lab, SYNTAX)
    assert refused.status_code == 422 and "patient_id: 1 文字以上で入力してください" in refused.text
    assert expired.status_code == 403 and "フォームの有効期限が切れました" in expired.json()["detail"]
    with client(port, None, cookie=READ_TOKEN) as reader:
        forbidden = reader.get("/desk", headers=JAPANESE)
    assert forbidden.status_code == 403 and "管理者トークンでログイン" in forbidden.json()["detail"]


def test_why_an_mpps_is_unlinked_in_the_pages_language(tmp_path: Path, ris: RisListener) -> None:
    """The store keeps one English reason; the Japanese desk and reconcile page say it in Japanese."""
    unscheduled = n_create("", "", "", "1.2.392.200036.9999.6.9", PatientID="P9", PatientName="SUZUKI^JIRO")
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'reasons.db'}") as broker:
        assert mpps(broker.dicom.port, "create", tmp_path, dataset=unscheduled)["status"] == 0
        with client(web_port(broker), None, cookie=ADMIN_TOKEN) as admin:
            desk, english = admin.get("/desk", headers=JAPANESE).text, admin.get("/desk").text
    assert "予約外: 予約ステップの引用がありません" in desk and "unscheduled" not in desk
    assert "unscheduled: no scheduled step quoted" in english
