from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from fastapi.testclient import TestClient

from cityops.core import i18n

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "cityops"


def extracted_msgids() -> dict[str, str]:
    """Every msgid marked in Python (_, N_, gettext...) and templates, with where it was found."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        SOURCE, method_map, options_map
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_every_msgid_in_the_code_has_a_chinese_translation() -> None:
    msgids = extracted_msgids()
    assert "City Operations Platform" in msgids  # extraction really reads the templates
    catalogue = i18n.load_catalogue("zh")
    missing = [f"{msgid!r} ({where})" for msgid, where in sorted(msgids.items())
               if not (catalogue.get(msgid) and catalogue[msgid].string and not catalogue[msgid].fuzzy)]
    assert not missing, "no Chinese translation in src/cityops/web/i18n/zh/LC_MESSAGES/*.po for:\n" + \
        "\n".join(missing)


def test_chinese_catalogue_files_do_not_contradict_each_other() -> None:
    from babel.messages import pofile

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in i18n.catalogue_paths("zh"):
        with path.open("rb") as handle:
            for message in pofile.read_po(handle):
                if not message.id:
                    continue
                text = str(message.string)
                if message.id in seen and seen[message.id][1] != text:
                    clashes.append(f"{message.id!r}: {seen[message.id][0]} vs {path.name}")
                seen.setdefault(str(message.id), (path.name, text))
    assert not clashes


def test_translations_are_compiled_from_the_po_files() -> None:
    assert i18n.gettext_for("zh").gettext("City Operations Platform") == "城市运行与治理平台"
    assert i18n.gettext_for("en").gettext("City Operations Platform") == "City Operations Platform"
    assert i18n.gettext_for("fr").gettext("Home") == "Home"


def test_locale_names_are_normalised() -> None:
    assert i18n.normalise("zh-CN") == "zh"
    assert i18n.normalise("EN_us") == "en"
    assert i18n.normalise("fr") is None
    assert i18n.normalise("") is None


def test_chinese_is_the_default_language(bare_client: TestClient) -> None:
    page = bare_client.get("/missing")
    assert '<html lang="zh-CN">' in page.text
    assert "城市运行与治理平台" in page.text


def test_language_switch_is_remembered_in_a_cookie(bare_client: TestClient) -> None:
    english = bare_client.get("/missing?lang=en")
    assert english.cookies.get("lang") == "en"
    assert "City Operations Platform" in english.text
    # The next request carries no ?lang= and stays in English.
    again = bare_client.get("/missing")
    assert '<html lang="en">' in again.text
    assert "Page not found" in again.text
    # Switching back to Chinese.
    chinese = bare_client.get("/missing?lang=zh")
    assert chinese.cookies.get("lang") == "zh"
    assert "页面不存在" in bare_client.get("/missing").text


def test_the_layout_links_to_the_other_language(bare_client: TestClient) -> None:
    page = bare_client.get("/missing?x=1")
    assert 'href="/missing?x=1&amp;lang=en"' in page.text


def test_an_unknown_language_falls_back_to_the_default(bare_client: TestClient) -> None:
    page = bare_client.get("/missing?lang=xx")
    assert "lang" not in page.cookies
    assert "页面不存在" in page.text


def test_a_forged_language_cookie_is_ignored(bare_client: TestClient) -> None:
    bare_client.cookies.set("lang", "<script>")
    page = bare_client.get("/missing")
    assert '<html lang="zh-CN">' in page.text
