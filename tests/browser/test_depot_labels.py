"""Depot labels printed by Chromium against a real `rescuehub run` (depot/labels.py): a keeper
opens the labels of 26 items, the A4 printout is two A4 pages (24 labels, then 2) and the 62 mm
one a 62 × 29 mm page a label; each label's QR code, as the browser draws the printed page,
reads back (zxing-cpp) as the code printed beside it; the print button opens the print dialog.
Screenshots of the printed pages land in tests/artifacts/ (look at them)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import zxingcpp
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_as
from tests.browser.test_map import api_client
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOATS = 26
CODES = [f"TG-BOAT-{n:03d}" for n in range(1, BOATS + 1)]
MM_PER_PT = 25.4 / 72
# The page as a printer gets it: A4 portrait, and the 62 mm label.
A4_MM = (210, 297)
LABEL_MM = (62, 29)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module, with a depot of boats made through the API."""
    data_dir = tmp_path_factory.mktemp("depot-labels") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    api = api_client(running, "label-keeper", "keeper")
    for path, body in [
            ("sites", {"code": "TG-D1", "name": "铁关镇应急物资储备库"}),
            ("bins", {"path": "TG-D1/A/1/1"}), ("bins", {"path": "TG-D1/A/1/2"}),
            ("types", {"code": "BOAT", "name_zh": "冲锋舟（橡皮艇）", "category": "boat",
                       "serialized": True})]:
        answer = api.post(f"{running.url}/api/v1/depot/{path}", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
    for n, code in enumerate(CODES):
        answer = api.post(running.url + "/api/v1/depot/items", timeout=10, json={
            "code": code, "type": "BOAT", "bin": f"TG-D1/A/1/{1 + n // 13}"})
        assert answer.status_code == 201, answer.text
    yield running
    running.stop()


def printed_pages(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's size in mm, from the PDF Chromium printed."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return [(round((float(x1) - float(x0)) * MM_PER_PT), round((float(y1) - float(y0))
                                                               * MM_PER_PT))
            for x0, y0, x1, y1 in boxes]


# Chromium decodes its own screenshot (a PNG) into grey pixels: no image library needed here.
GREY_PIXELS = """async (png) => {
  const image = new Image();
  image.src = "data:image/png;base64," + png;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const rgba = context.getImageData(0, 0, image.width, image.height).data;
  const grey = new Uint8Array(image.width * image.height);
  for (let i = 0; i < grey.length; i++) {
    grey[i] = (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3;
  }
  let text = "";
  for (let i = 0; i < grey.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, grey.subarray(i, i + 0x8000));
  }
  return {width: image.width, height: image.height, grey: btoa(text)};
}"""


def read_codes(page, png: bytes, columns: int, rows: int) -> dict[tuple[int, int], str]:
    """The QR codes zxing-cpp finds in a screenshot of a sheet of `columns` × `rows` labels, by
    the cell (row, column) their centre lies in."""
    decoder = page.context.new_page()
    try:
        found = decoder.evaluate(GREY_PIXELS, base64.b64encode(png).decode())
    finally:
        decoder.close()
    pixels = np.frombuffer(base64.b64decode(found["grey"]), dtype=np.uint8).reshape(
        found["height"], found["width"])
    cell_w, cell_h = found["width"] / columns, found["height"] / rows
    cells = {}
    for code in zxingcpp.read_barcodes(pixels, formats=zxingcpp.BarcodeFormat.QRCode):
        corners = (code.position.top_left, code.position.bottom_right)
        x, y = sum(p.x for p in corners) / 2, sum(p.y for p in corners) / 2
        cells[(int(y // cell_h), int(x // cell_w))] = code.text
    return cells


def one_line_codes(page) -> int:
    """How many labels show their code on one line."""
    return page.evaluate("""() => [...document.querySelectorAll(".label-code")].filter(
        (p) => p.getBoundingClientRect().height < 1.5 * parseFloat(getComputedStyle(p).fontSize)
    ).length""")


def test_a_keeper_prints_a4_sheets_and_62mm_labels(hub, page, artifacts):
    sign_in_as(page, hub, "depot-wang", "keeper")
    page.set_viewport_size({"width": 1000, "height": 1200})
    page.goto(hub.url + "/api/v1/depot/labels?type=boat&layout=a4-3x8")
    expect(page).to_have_title(re.compile("物资标签"))
    expect(page.locator("section.sheet")).to_have_count(2)
    expect(page.locator("section.sheet").first.locator("article.label")).to_have_count(24)
    expect(page.locator(".labels-what p")).to_contain_text("标签 26 张，共 2 页")

    # What the printer gets: two A4 pages, nothing spilling onto a third.
    assert printed_pages(page.pdf(prefer_css_page_size=True)) == [A4_MM, A4_MM]

    # The first sheet as printed: each QR reads back as the code printed beside it, and the
    # labels lie on the 70 × 37 mm grid from the sheet's corner.
    page.emulate_media(media="print")
    sheet = page.locator("section.sheet").first
    box = sheet.bounding_box()
    px_per_mm = box["width"] / 210
    assert abs(box["height"] / px_per_mm - 296) < 0.5
    for n, label in enumerate(sheet.locator("article.label").all()):
        cell = label.bounding_box()
        left, top = (cell["x"] - box["x"]) / px_per_mm, (cell["y"] - box["y"]) / px_per_mm
        assert (round(left, 1), round(top, 1)) == (70 * (n % 3), 37 * (n // 3)), n
    shot = sheet.screenshot(path=artifacts / "depot-labels-a4.png")
    assert read_codes(page, shot, 3, 8) == {(n // 3, n % 3): CODES[n] for n in range(24)}
    printed = sheet.locator(".label-code").all_inner_texts()
    assert printed == CODES[:24]
    assert sheet.locator(".label-name").first.inner_text() == "冲锋舟（橡皮艇）"
    assert sheet.locator(".label-place").first.inner_text() == "TG-D1/A/1/1"
    # No label's text runs out of its label.
    overflowing = page.evaluate("""() => [...document.querySelectorAll("article.label")]
        .filter((l) => l.scrollWidth > l.clientWidth || l.scrollHeight > l.clientHeight)
        .map((l) => l.dataset.code)""")
    assert overflowing == []
    assert one_line_codes(page) == BOATS
    page.emulate_media(media="no-override")
    page.screenshot(path=artifacts / "depot-labels-a4-screen.png")

    # The 62 mm printer: one 62 × 29 mm page a label.
    page.get_by_role("link", name=re.compile("62 毫米")).click()
    expect(page).to_have_url(re.compile(r"layout=62mm"))
    expect(page.locator("section.sheet")).to_have_count(BOATS)
    assert printed_pages(page.pdf(prefer_css_page_size=True)) == [LABEL_MM] * BOATS
    page.emulate_media(media="print")
    label = page.locator("section.sheet").first
    shot = label.screenshot(path=artifacts / "depot-labels-62mm.png", scale="device")
    assert read_codes(page, shot, 1, 1) == {(0, 0): CODES[0]}
    assert one_line_codes(page) == BOATS
    page.emulate_media(media="no-override")

    # The print button opens the browser's print dialog (counted instead of shown).
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed++; }; }")
    page.get_by_role("button", name="打印").click()
    assert page.evaluate("window.__printed") == 1
    assert page.errors == []
