"""The 鹤信码: the card (SVG, PNG, PDF) carries a QR code that decodes to the entity's signed link, the link
opens its public page, and an altered code or a forged signature is refused."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from cityops.config import Settings
from cityops.core.db import Database
from cityops.core.errors import Forbidden
from cityops.credit import qrcode
from cityops.credit.models import Entity
from tests.accounts.helpers import login
from tests.conftest import make_settings


def an_entity(db: Database) -> Entity:
    with db.sessions() as session:
        found = session.scalars(select(Entity).where(Entity.status == "active").order_by(Entity.id)).first()
    assert found is not None
    return found


def decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_signature_depends_on_the_code_and_the_secret(settings: Settings, tmp_path: object) -> None:
    one = qrcode.signature(settings, "91110000710926094P")
    assert len(one) == qrcode.SIGNATURE_CHARS and re.fullmatch(r"[A-Za-z0-9_-]+", one)
    assert qrcode.signature(settings, "9144030071526726XG") != one
    other = make_settings(tmp_path, secret_key="another-secret-" + "y" * 32)  # type: ignore[arg-type]
    assert qrcode.signature(other, "91110000710926094P") != one
    qrcode.verify(settings, "91110000710926094P", one)
    with pytest.raises(Forbidden):
        qrcode.verify(settings, "9144030071526726XG", one)  # the code altered
    with pytest.raises(Forbidden):
        qrcode.verify(settings, "91110000710926094P", None)


def test_the_png_card_decodes_to_the_signed_link_which_opens_the_public_page(
    client: TestClient, db: Database, settings: Settings
) -> None:
    entity = an_entity(db)
    login(client, "inspector")
    card = client.get(f"/credit/code/{entity.code}.png")
    assert card.status_code == 200, card.text
    assert card.headers["content-type"] == "image/png"
    [link] = decode(card.content)
    assert link == f"http://testserver/c/{entity.code}?s={qrcode.signature(settings, entity.code)}"
    client.cookies.clear()  # whoever scans it is not signed in
    page = client.get(link)
    assert page.status_code == 200, page.text
    assert entity.name in page.text and entity.code in page.text


def test_the_svg_and_pdf_cards(client: TestClient, db: Database, settings: Settings) -> None:
    entity = an_entity(db)
    login(client, "inspector")
    svg = client.get(f"/credit/code/{entity.code}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert entity.name in svg.text and entity.code in svg.text and "鹤信码" in svg.text
    # The QR drawn in the SVG is the matrix of the signed link (segno's own encoding of it).
    url = f"http://testserver{qrcode.public_path(settings, entity.code)}"
    runs = len(qrcode._runs(qrcode.make(url).matrix))
    assert svg.text.count("z") >= runs
    pdf = client.get(f"/credit/code/{entity.code}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    # The card's Chinese is drawn in an embedded CJK TrueType font, or the standard CID font without one.
    assert b"/FontFile2" in pdf.content if qrcode.cjk_font() else b"STSong-Light" in pdf.content


def test_a_card_outside_one_s_scope_is_not_found(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    with db.sessions() as session:
        codes = list(session.scalars(select(Entity.code)))
    answers = {client.get(f"/credit/code/{code}.svg").status_code for code in codes[:30]}
    assert answers <= {200, 404} and 404 in answers
    login(client, "citizen")
    assert client.get(f"/credit/code/{codes[0]}.svg").status_code == 403


def test_forged_and_tampered_links_are_refused_without_entity_data(
    client: TestClient, db: Database, settings: Settings
) -> None:
    entity = an_entity(db)
    good = qrcode.signature(settings, entity.code)
    forged = client.get(f"/c/{entity.code}", params={"s": "A" * qrcode.SIGNATURE_CHARS})
    assert forged.status_code == 403
    assert "does not match" in forged.text or "不符" in forged.text
    assert entity.name not in forged.text
    with db.sessions() as session:
        other = session.scalars(select(Entity).where(Entity.id != entity.id)).first()
    assert other is not None
    tampered = client.get(f"/c/{other.code}", params={"s": good})  # another code under this signature
    assert tampered.status_code == 403 and other.name not in tampered.text
    unsigned = client.get(f"/c/{entity.code}")
    assert unsigned.status_code == 403 and entity.name not in unsigned.text
    unknown = "91110000710926094P"  # valid, signed, but not in the register
    missing = client.get(f"/c/{unknown}", params={"s": qrcode.signature(settings, unknown)})
    assert missing.status_code == 404
