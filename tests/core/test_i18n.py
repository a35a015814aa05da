"""Chinese first: the catalog covers every string and is compiled; pages and API errors speak it.

The commands that keep the catalog up to date are at the top of config/babel.cfg.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po, write_po

# Pages, sockets and translations: no backend-specific SQL (conftest: any_backend).
pytestmark = pytest.mark.any_backend

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "config" / "babel.cfg"
LOCALE = "zh_Hans_CN"
PO = ROOT / "dispatch" / "translations" / LOCALE / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
# The same keywords as the documented `pybabel extract -k _l -k lazy_gettext`.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
CJK = re.compile(r"[\u4e00-\u9fff]")


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Catalog:
    """A fresh extraction of the source tree, written to and read back from a temporary .pot."""
    with BABEL_CFG.open() as f:
        method_map, options_map = parse_mapping_cfg(f, filename=str(BABEL_CFG))
    catalog = Catalog(project="Township Rescue Hub")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    with pot.open("wb") as f:
        write_po(f, catalog)
    return read_catalog(pot)


@pytest.fixture(scope="module")
def chinese() -> Catalog:
    return read_catalog(PO, LOCALE)


def _where(message) -> str:
    return ", ".join(f"{path}:{line}" for path, line in message.locations)


def test_extraction_finds_the_kernel_and_page_strings(template):
    ids = {m.id for m in template if m.id}
    # One from each kind of source: a lazy Python error, a role label, a template.
    assert {"Sign in first, or send a valid bearer token.", "Commander", "Sign in"} <= ids


def test_every_string_has_a_chinese_translation(template, chinese):
    problems = []
    for message in template:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        translated = chinese.get(key, context=message.context)
        if translated is None:
            problems.append(f"missing from the .po: {key!r} ({_where(message)})")
            continue
        strings = translated.string if isinstance(translated.string, tuple) else (
            translated.string,)
        if not all(s and s.strip() for s in strings):
            problems.append(f"no Chinese for {key!r} ({_where(message)})")
        elif translated.fuzzy:
            problems.append(f"still fuzzy: {key!r}")
    assert not problems, ("update and translate the catalog (commands in config/babel.cfg):\n"
                          + "\n".join(problems))


def test_translations_keep_their_placeholders(chinese):
    problems = [f"{message.id!r}: {'; '.join(map(str, errors))}"
                for message, errors in chinese.check()]
    assert not problems, "\n".join(problems)


def _translations(catalog: Catalog) -> dict:
    """What a compiled catalog gives at run time: (context, id) -> translation, fuzzy left out."""
    return {(m.context, m.id): m.string for m in catalog
            if m.id and m.string and not m.fuzzy}


def test_committed_mo_is_compiled_from_the_po():
    # Compared by content: Babel versions write the same catalog as different bytes.
    assert MO.exists(), "run: .venv/bin/pybabel compile -d dispatch/translations"
    with MO.open("rb") as f:
        compiled = _translations(read_mo(f))
    source = _translations(read_catalog(PO, LOCALE))
    stale = sorted(str(key[1]) for key in source.keys() ^ compiled.keys()
                   | {k for k in source.keys() & compiled.keys() if source[k] != compiled[k]})
    assert not stale, (f"messages.mo is stale for {stale[:5]}: "
                       "run .venv/bin/pybabel compile -d dispatch/translations")


def test_login_page_is_chinese_by_default_and_english_on_request(client):
    page = client.get("/login").get_data(as_text=True)
    assert "登录" in page and "乡镇应急救援中心" in page
    assert 'lang="zh-CN"' in page

    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in" in page and "Township Rescue Hub" in page
    assert 'lang="en"' in page
    assert "登录" not in page

    client.get("/lang/zh_Hans_CN")
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_api_errors_are_chinese_by_default(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert response.json["message"] == "请先登录，或提供有效的访问令牌。"

    client.get("/lang/en")
    response = client.get("/api/v1/me")
    assert response.json["message"] == "Sign in first, or send a valid bearer token."


def test_role_label_follows_the_language(client, login):
    login("team_leader")
    assert "队长" in client.get("/").get_data(as_text=True)
    client.get("/lang/en")
    assert "Team leader" in client.get("/").get_data(as_text=True)


def test_unknown_language_is_refused(client):
    assert client.get("/lang/xx").status_code == 404
    assert CJK.search(client.get("/login").get_data(as_text=True))
