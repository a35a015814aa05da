"""A form's error names the field by its label, never by the API's member name: the shared
helper (dispatch/static/api.js `fieldMessage`) on a real `bad_field` answer of the hub."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_first_time
from tests.fixtures.hub import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for both languages (each test signs in as a commander of its own)."""
    yield from serve(tmp_path_factory.mktemp("forms") / "var")

ASK = """async ([label]) => {
  const api = await import(new URL("/static/api.js", location.href).href);
  const body = {type: "Feature", properties: {code: "TV09", name_zh: "石板沟", population: "many"},
                geometry: {type: "Polygon", coordinates: [[[109, 33], [109.01, 33],
                           [109.01, 33.01], [109, 33]]]}};
  const answer = await api.request("POST", "/api/v1/villages", {body});
  const error = new api.ApiError(answer.status, answer.body);
  return {status: answer.status, field: error.field, raw: error.message,
          shown: api.fieldMessage(error, label)};
}"""


@pytest.mark.parametrize(("lang", "label"), [("zh", "人口"), ("en", "Population")])
def test_field_errors_show_the_label(hub, page, lang, label):
    sign_in_first_time(page, hub)
    if lang == "en":
        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    result = page.evaluate(ASK, [label])
    assert result["status"] == 400 and result["field"] == "population", result
    assert "population" in result["raw"]  # the API's own message names its member
    assert result["shown"].startswith(label), result
    assert "population" not in result["shown"], result
    assert page.errors == []
