"""Printable QR labels (GET /api/v1/depot/labels, depot/labels.py) on both databases: each QR
reads back as its item's code with a real decoder (zxing-cpp, from the SVG's own path, not from
segno), 24 labels per A4 sheet, one per 62 mm label, a type, bin or site printed whole, the cap,
unknown codes named, a hostile type name escaped, roles, and nothing inline for the CSP.

tests/browser/test_depot_labels.py prints the pages in Chromium (page sizes, screenshots)."""

from __future__ import annotations

import re

import lxml.html
import numpy as np
import pytest
import zxingcpp
from sqlalchemy import select, update

from depot import labels
from depot.models import Item, ItemType
from dispatch.core.db import db
from tests.depot import factories as f

URL = "/api/v1/depot/labels"
# Enough boats for two A4 sheets (24 + 6).
BOATS = 30


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


def page(client, headers, **params):
    answer = client.get(URL, query_string=params, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/html"
    return lxml.html.fromstring(answer.get_data(as_text=True))


def sheets(doc) -> list[list]:
    return [s.xpath(".//article[@class='label']") for s in doc.xpath("//section[@class='sheet']")]


def modules(svg) -> np.ndarray:
    """The QR's modules (True: dark) drawn by the SVG's path, read as a renderer would: segno
    draws each run of dark modules as a horizontal stroke of width 1 along y + 0.5."""
    size = int(svg.get("viewbox").split()[2])
    dark = np.zeros((size, size), dtype=bool)
    x = y = 0.0
    (path,) = svg.xpath(".//path")
    for command, args in re.findall(r"([A-Za-z])([^A-Za-z]*)", path.get("d")):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            dark[int(y), int(x):int(x + numbers[0])] = True
            x += numbers[0]
        else:
            raise AssertionError(f"unexpected path command {command}")
    return dark


def decode(svg) -> str:
    """The text a QR decoder reads from the SVG's modules, drawn 4 px a module."""
    pixels = np.where(np.kron(modules(svg), np.ones((4, 4), dtype=bool)), 0, 255).astype(
        np.uint8)
    found = zxingcpp.read_barcodes(pixels)
    assert len(found) == 1, found
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    return found[0].text


def shown(label) -> tuple[str, str, str]:
    return tuple(label.xpath(f"string(.//p[starts-with(@class, 'label-{part}')])")
                 for part in ("code", "name", "place"))


def test_each_qr_reads_back_as_its_items_code(client, keeper):
    doc = page(client, keeper, items="boat-1,PUMP-2,ext-4", layout="a4-3x8")
    (sheet,) = sheets(doc)
    assert [shown(label) for label in sheet] == [
        ("BOAT-1", "冲锋舟", f.BIN_A), ("PUMP-2", "排水泵", f.BIN_A), ("EXT-4", "灭火器", f.BIN_A)]
    for label in sheet:
        (svg,) = label.xpath(".//svg")
        assert decode(svg) == label.get("data-code")
        # A full QR code with its 4-module quiet zone (not a Micro QR, which phones miss).
        dark = modules(svg)
        assert dark.shape[0] >= 21 + 8 and not dark[:4].any() and not dark[:, -4:].any()


def test_the_longest_code_fits_and_reads_back(client, keeper):
    code = "X" * 16 + "-" + "9" * 15
    with db.transaction() as s:
        s.execute(update(Item).where(Item.code == "BOAT-1").values(code=code))
    doc = page(client, keeper, items=code.lower())
    (svg,) = doc.xpath("//article//svg")
    assert decode(svg) == code
    # The longest codes print smallest (and may wrap); a short one large.
    assert doc.xpath("string(//article//p[starts-with(@class, 'label-code')]/@class)") == (
        "label-code label-code-xs")
    assert [labels.Label(c, "", "", None).size for c in ("B-1", "T000-BT-001", "T000-BT-00001",
                                                         "X" * 17)] == ["l", "m", "s", "xs"]


def boats(count: int) -> None:
    with db.transaction() as s:
        kind = s.scalar(select(ItemType.id).where(ItemType.code == "BOAT"))
        home = s.scalar(select(Item.home_site_id).where(Item.code == "BOAT-1"))
        s.add_all(Item(code=f"BOAT-{n:02d}", type_id=kind, home_site_id=home, serial="")
                  for n in range(5, count + 1))


def test_an_a4_sheet_holds_24_labels_and_a_type_prints_whole(client, keeper):
    boats(BOATS)
    doc = page(client, keeper, type="boat")
    assert [len(s) for s in sheets(doc)] == [24, BOATS - 24]
    printed = [label.get("data-code") for s in sheets(doc) for label in s]
    # By bin, then by code: the four in the bin first, those in no bin (at their home site) after.
    assert printed[:4] == ["BOAT-1", "BOAT-2", "BOAT-3", "BOAT-4"]
    assert sorted(printed) == sorted(["BOAT-1", "BOAT-2", "BOAT-3", "BOAT-4",
                                      *[f"BOAT-{n:02d}" for n in range(5, BOATS + 1)]])
    assert shown(sheets(doc)[1][-1]) == (f"BOAT-{BOATS}", "冲锋舟", f.SITE)
    links = [link.get("href") for link in doc.xpath("//link[@rel='stylesheet']")]
    assert any("/labels-a4-3x8.css" in link for link in links), links
    assert doc.xpath("string(//body/@class)") == "labels-a4-3x8"


def test_the_62mm_layout_prints_one_label_a_page(client, keeper):
    doc = page(client, keeper, items="BOAT-1,BOAT-2",
               layout="62mm")
    assert [len(s) for s in sheets(doc)] == [1, 1]
    links = [link.get("href") for link in doc.xpath("//link[@rel='stylesheet']")]
    assert any("/labels-62mm.css" in link for link in links), links
    assert not any("a4" in link for link in links)
    # The other layout is one click away, for the same items.
    other = doc.xpath("//nav[@class='labels-layouts']/a[not(@aria-current)]/@href")
    assert len(other) == 1 and "layout=a4-3x8" in other[0] and "items=BOAT-1" in other[0]


def test_a_bin_prints_with_the_bins_under_it_and_a_site_whole(client, keeper):
    f.set_item("PUMP-1", bin_id=db.session.scalar(select(Item.bin_id).where(
        Item.code == "BOAT-1")) + 1)  # BIN_B
    in_a = {c for c in page(client, keeper, bin="d1/a").xpath("//article/@data-code")}
    assert "PUMP-1" not in in_a and {"BOAT-1", "PUMP-2", "EXT-1"} <= in_a
    assert page(client, keeper, bin=f.BIN_B).xpath("//article/@data-code") == ["PUMP-1"]
    site = page(client, keeper, site="d1").xpath("//article/@data-code")
    assert len(site) == 16 and "PUMP-1" in site
    # Retired items get no label when a whole type, bin or site is printed; named, they do.
    f.set_item("BOAT-2", status="retired")
    assert "BOAT-2" not in page(client, keeper, type="BOAT").xpath("//article/@data-code")
    assert page(client, keeper, items="BOAT-2").xpath("//article/@data-code") == ["BOAT-2"]
    # Together: boats in that bin.
    both = page(client, keeper, type="BOAT", bin=f.BIN_A).xpath("//article/@data-code")
    assert both == ["BOAT-1", "BOAT-3", "BOAT-4"]


def test_a_type_without_items_prints_nothing_and_says_so(client, keeper):
    doc = page(client, keeper, type="SANDBAG")
    assert sheets(doc) == []
    assert doc.xpath("string(//p[@class='labels-none'])") == "没有可打印的物资。"
    assert doc.xpath("//button[@id='print']/@disabled")


def test_unknown_codes_are_404_naming_each(client, keeper):
    answer = client.get(URL, query_string={"items": "BOAT-1,NOPE-1,boat 2,nope-1,‮X"},
                        headers=keeper)
    assert answer.status_code == 404
    assert answer.json["error"] == "not_found"
    assert answer.json["codes"] == ["NOPE-1", "boat 2", "nope-1", "‮X"]
    assert "NOPE-1" in answer.json["message"]


@pytest.mark.parametrize(("params", "parameter"), [
    ({"type": "NOPE"}, "type"), ({"bin": "D1/Z"}, "bin"), ({"bin": "D1_A"}, "bin"),
    ({"site": "D9"}, "site"), ({"site": "d1", "type": "nope"}, "type"),
])
def test_an_unknown_type_bin_or_site_is_404(client, keeper, params, parameter):
    answer = client.get(URL, query_string=params, headers=keeper)
    assert (answer.status_code, answer.json["error"]) == (404, "not_found")
    assert answer.json["parameter"] == parameter


@pytest.mark.parametrize(("params", "parameter"), [
    ({"items": "BOAT-1", "layout": "a5"}, "layout"),
    ({"items": "BOAT-1", "layout": "A4-3X8"}, "layout"),
    ({}, "items"), ({"items": " , ,"}, "items"), ({"layout": "62mm"}, "items"),
    ({"items": "BOAT-1", "type": "BOAT"}, "items"),
    ({"type": "B" * 33}, "type"), ({"bin": "D1/" + "A" * 130}, "bin"),
])
def test_bad_parameters_are_400_naming_them(client, keeper, params, parameter):
    answer = client.get(URL, query_string=params, headers=keeper)
    assert (answer.status_code, answer.json["error"]) == (400, "bad_parameter"), answer.json
    assert answer.json["parameter"] == parameter


def test_more_labels_than_the_cap_is_a_clear_400(client, keeper, monkeypatch):
    many = ",".join(["BOAT-1"] * (labels.MAX_LABELS + 1))
    answer = client.get(URL, query_string={"items": many}, headers=keeper)
    assert (answer.status_code, answer.json["error"]) == (400, "too_many_labels")
    assert answer.json["count"] == labels.MAX_LABELS + 1
    assert answer.json["max"] == labels.MAX_LABELS == 480
    assert "480" in answer.json["message"]
    # A whole site beyond the cap (16 items here, against a cap of 15 for the test).
    monkeypatch.setattr(labels, "MAX_LABELS", 15)
    answer = client.get(URL, query_string={"site": "D1"}, headers=keeper)
    assert (answer.status_code, answer.json["error"], answer.json["count"]) == (
        400, "too_many_labels", 16)
    assert client.get(URL, query_string={"type": "BOAT"}, headers=keeper).status_code == 200


def test_a_hostile_type_name_is_text(client, keeper):
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>&amp;"'
    with db.transaction() as s:
        s.execute(update(ItemType).where(ItemType.code == "BOAT").values(name_zh=hostile))
    answer = client.get(URL, query_string={"items": "BOAT-1"}, headers=keeper)
    body = answer.get_data(as_text=True)
    assert "<script>alert" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    doc = lxml.html.fromstring(body)
    assert shown(doc.xpath("//article")[0])[1] == hostile


def test_the_page_has_nothing_inline_for_the_csp(client, keeper):
    answer = client.get(URL, query_string={"items": "BOAT-1,PUMP-1"}, headers=keeper)
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    doc = lxml.html.fromstring(answer.get_data(as_text=True))
    assert [s.get("type") for s in doc.xpath("//script")] == ["module"]
    assert all(s.get("src") and not (s.text or "").strip() for s in doc.xpath("//script"))
    assert not doc.xpath("//style | //*[@style] | //*[@onclick] | //*[@onload]")
    for link in doc.xpath("//link[@rel='stylesheet']/@href | //script/@src"):
        assert client.get(link).status_code == 200, link
    assert doc.xpath("string(//html/@lang)") == "zh-CN"
    assert doc.xpath("string(//button[@id='print'])") == "打印"


@pytest.mark.parametrize(("role", "status"), [
    ("keeper", 200), ("commander", 200), ("dispatcher", 200), ("team_leader", 403),
    ("viewer", 403)])
def test_keepers_commanders_and_dispatchers_print(client, keeper, bearer, role, status):
    answer = client.get(URL, query_string={"items": "BOAT-1"}, headers=bearer(role))
    assert answer.status_code == status


def test_a_gateway_or_nobody_prints_nothing(client, keeper):
    from dispatch.core import auth

    with db.transaction() as s:
        _gateway, _password, token = auth.create_gateway(s, "GW-T", actor="test", mqtt_hash=str)
    answer = client.get(URL, query_string={"items": "BOAT-1"},
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert client.get(URL, query_string={"items": "BOAT-1"}).status_code == 401
