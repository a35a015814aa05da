"""The keepers' check-out and check-in pages as served (the browser test drives them): who may
open them, the navigation link, the page's config and words as JSON (no inline script), and
every reason an item cannot go out has its words."""

from __future__ import annotations

import json
import re

import pytest

from depot import rules

# Pages render the same on both databases (conftest: any_backend).
pytestmark = pytest.mark.any_backend

PAGES = ("/depot/checkout", "/depot/checkin")


def config_of(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="depot-config">(.*?)</script>', html,
                      re.S)
    return json.loads(block.group(1))


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(("role", "status"), [("keeper", 200), ("commander", 200),
                                              ("dispatcher", 403), ("viewer", 403)])
def test_keepers_and_commanders_open_the_pages(client, login, path, role, status):
    login(role)
    assert client.get(path).status_code == status


def test_signed_out_goes_to_sign_in(client):
    answer = client.get("/depot/checkout")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


@pytest.mark.parametrize("path", PAGES)
def test_the_page_is_chinese_with_its_config_and_no_inline_script(client, login, path):
    login("keeper")
    html = client.get(path).get_data(as_text=True)
    assert "扫描或输入编码" in html and 'href="/depot/checkout"' in html
    tags = re.findall(r"<script[^>]*>", html)
    assert tags and all(" src=" in t or 'type="application/json"' in t for t in tags), tags
    config = config_of(html)
    assert config["urls"]["scan"] == "/api/v1/depot/scan"
    assert config["urls"]["reader"].startswith("/vendor/jsqr/jsQR.js")
    assert config["incidents"] is False  # no package keeps incidents yet
    assert set(config["words"]["reasons"]) == set(rules.REASONS)
    assert config["words"]["reasons"]["inspection_overdue"] == "逾期未检"


def test_the_qr_reader_is_served_from_node_modules(client, login):
    login("keeper")
    answer = client.get("/vendor/jsqr/jsQR.js")
    assert answer.status_code == 200 and b"jsQR" in answer.data


def test_the_depot_link_is_for_keepers_and_commanders(client, login):
    login("dispatcher")
    assert 'href="/depot/checkout"' not in client.get("/").get_data(as_text=True)
