"""The credit code (鹤信码): one QR code per entity carrying a signed link to its public page, and a
printable card (SVG, PNG, PDF) with the entity's name, credit code and QR code.

The link is `/c/{code}?s={signature}`: the signature is an HMAC-SHA256 of the credit code under a key
derived from the installation's secret key, cut to 12 URL-safe characters (72 bits: guessing one for a
code takes about 10^21 tries). A tampered code or a forged signature does not verify, so a printed card
cannot be altered to show another entity's page, nor a card made for a code the city has not issued one
for. The public page itself shows public information only (see credit/records.py PUBLIC_KINDS).

The card's text is Chinese: SVG leaves the font to the viewer; PNG and PDF embed a CJK TrueType font
found on the machine (WenQuanYi Micro Hei, which ./run installs, or Noto Sans CJK); PDF falls back to the
standard CID font STSong-Light (no file needed, shown by any PDF reader with Chinese support)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path

import segno

from cityops.config import Settings
from cityops.core.errors import CityopsError, Forbidden

SIGNATURE_CHARS = 12
PURPOSE = "cityops-credit-code"
# CJK TrueType fonts in the places Debian's packages put them (fonts-wqy-microhei, fonts-wqy-zenhei,
# fonts-noto-cjk), first found wins.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)
NAME_CHARS_PER_LINE = 16


class FontMissing(CityopsError):
    status = 503
    code = "font_missing"


def signature(settings: Settings, code: str) -> str:
    key = settings.derived_secret(PURPOSE).encode()
    digest = hmac.new(key, code.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_CHARS]


def public_path(settings: Settings, code: str) -> str:
    return f"/c/{code}?s={signature(settings, code)}"


def verify(settings: Settings, code: str, given: str | None) -> None:
    """Forbidden unless `given` is the code's signature (compared in constant time)."""
    if not given:
        raise Forbidden("this link carries no signature: scan the entity's printed credit code (鹤信码)")
    if not hmac.compare_digest(signature(settings, code), given):
        raise Forbidden(
            "the signature of this link does not match the credit code: the code was altered or forged"
        )


def make(url: str) -> segno.QRCode:
    # Level M (15% recovery): a card posted on a shop door gets scratched.
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str, *, scale: int = 4) -> bytes:
    out = io.BytesIO()
    make(url).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue()


@lru_cache(maxsize=1)
def cjk_font() -> Path | None:
    return next((p for p in FONT_CANDIDATES if p.is_file()), None)


@dataclass(frozen=True)
class Card:
    """What a card shows, in the reader's language (the labels) and the entity's own words."""

    title: str  # 鹤信码
    name: str
    code_label: str
    code: str
    caption: str
    url: str


def _name_lines(name: str) -> list[str]:
    return [name[i : i + NAME_CHARS_PER_LINE] for i in range(0, len(name), NAME_CHARS_PER_LINE)][:3] or [""]


# Layout in points of a 100 x 140 mm card (283 x 397 pt), shared by the three formats.
WIDTH, HEIGHT = 283.0, 397.0
QR_TOP, QR_SIZE = 150.0, 190.0


def _runs(matrix: tuple[bytearray, ...] | list[bytearray]) -> list[tuple[int, int, int]]:
    """Dark modules as horizontal runs (row, first column, length): far fewer rectangles to draw."""
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append((y, start, x - start))
            else:
                x += 1
    return runs


def card_svg(card: Card) -> bytes:
    qr = make(card.url)
    size = len(qr.matrix) + 8  # with the quiet zone
    unit = QR_SIZE / size
    left = (WIDTH - QR_SIZE) / 2
    path = "".join(
        f"M{left + (x + 4) * unit:.2f} {QR_TOP + (y + 4) * unit:.2f}h{n * unit:.2f}v{unit:.2f}"
        f"h{-n * unit:.2f}z"
        for y, x, n in _runs(qr.matrix)
    )
    lines = "".join(
        f'<text x="{WIDTH / 2}" y="{78 + 20 * i}" font-size="16" text-anchor="middle">{escape(line)}</text>'
        for i, line in enumerate(_name_lines(card.name))
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="140mm" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" '
        "font-family=\"'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif\">"
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff" stroke="#1f6f43" stroke-width="2"/>'
        f'<rect width="{WIDTH}" height="48" fill="#1f6f43"/>'
        f'<text x="{WIDTH / 2}" y="32" font-size="22" fill="#fff" text-anchor="middle">'
        f"{escape(card.title)}</text>"
        f"{lines}"
        f'<text x="{WIDTH / 2}" y="{QR_TOP - 20}" font-size="11" text-anchor="middle">'
        f"{escape(card.code_label)} {escape(card.code)}</text>"
        f'<path d="{path}" fill="#000"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 22}" font-size="11" text-anchor="middle" fill="#444">'
        f"{escape(card.caption)}</text></svg>"
    )
    return svg.encode()


def _font_or_fail() -> Path:
    font = cjk_font()
    if font is None:
        raise FontMissing(
            "no Chinese font on this server for the card: install fonts-wqy-microhei (./run does) or use the "
            "SVG card"
        )
    return font


def card_png(card: Card, *, scale: float = 3.0) -> bytes:
    """The card as PNG (Pillow, with the machine's CJK font)."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = _font_or_fail()
    width, height = round(WIDTH * scale), round(HEIGHT * scale)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)

    def font(size: float) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(font_path), round(size * scale), index=0)

    draw.rectangle((0, 0, width - 1, height - 1), outline=(31, 111, 67), width=round(2 * scale))
    draw.rectangle((0, 0, width, round(48 * scale)), fill=(31, 111, 67))
    draw.text((width / 2, 25 * scale), card.title, font=font(22), fill="white", anchor="mm")
    for i, line in enumerate(_name_lines(card.name)):
        draw.text((width / 2, (72 + 20 * i) * scale), line, font=font(16), fill="black", anchor="mm")
    draw.text(
        (width / 2, (QR_TOP - 24) * scale),
        f"{card.code_label} {card.code}",
        font=font(11),
        fill="black",
        anchor="mm",
    )
    qr = make(card.url)
    size = len(qr.matrix) + 8
    unit = QR_SIZE * scale / size
    left, top = (width - QR_SIZE * scale) / 2, QR_TOP * scale
    for y, x, n in _runs(qr.matrix):
        x0, y0 = left + (x + 4) * unit, top + (y + 4) * unit
        draw.rectangle((round(x0), round(y0), round(x0 + n * unit) - 1, round(y0 + unit) - 1), fill="black")
    draw.text((width / 2, (HEIGHT - 26) * scale), card.caption, font=font(11), fill=(68, 68, 68), anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@lru_cache(maxsize=1)
def _pdf_font() -> str:
    """The name of a registered reportlab font that draws Chinese: the machine's CJK TrueType font
    (embedded), else the standard CID font STSong-Light."""
    from reportlab.pdfbase import pdfmetrics

    font = cjk_font()
    if font is not None:
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont("CityopsCJK", str(font), subfontIndex=0))
        return "CityopsCJK"
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def card_pdf(card: Card) -> bytes:
    """The card as a one-page PDF of the card's size, the QR code drawn as vector rectangles."""
    from reportlab.pdfgen import canvas

    font = _pdf_font()
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(WIDTH, HEIGHT))
    pdf.setTitle(f"{card.title} {card.name}")

    def y(top: float) -> float:  # the layout measures from the top, PDF from the bottom
        return HEIGHT - top

    pdf.setStrokeColorRGB(31 / 255, 111 / 255, 67 / 255)
    pdf.setLineWidth(2)
    pdf.rect(1, 1, WIDTH - 2, HEIGHT - 2)
    pdf.setFillColorRGB(31 / 255, 111 / 255, 67 / 255)
    pdf.rect(0, y(48), WIDTH, 48, stroke=0, fill=1)
    pdf.setFillColorRGB(1, 1, 1)
    pdf.setFont(font, 22)
    pdf.drawCentredString(WIDTH / 2, y(32), card.title)
    pdf.setFillColorRGB(0, 0, 0)
    pdf.setFont(font, 16)
    for i, line in enumerate(_name_lines(card.name)):
        pdf.drawCentredString(WIDTH / 2, y(78 + 20 * i), line)
    pdf.setFont(font, 11)
    pdf.drawCentredString(WIDTH / 2, y(QR_TOP - 20), f"{card.code_label} {card.code}")
    qr = make(card.url)
    size = len(qr.matrix) + 8
    unit = QR_SIZE / size
    left = (WIDTH - QR_SIZE) / 2
    for row, x, n in _runs(qr.matrix):
        pdf.rect(left + (x + 4) * unit, y(QR_TOP + (row + 5) * unit), n * unit, unit, stroke=0, fill=1)
    pdf.setFillColorRGB(0.27, 0.27, 0.27)
    pdf.drawCentredString(WIDTH / 2, y(HEIGHT - 22), card.caption)
    pdf.showPage()
    pdf.save()
    return out.getvalue()
