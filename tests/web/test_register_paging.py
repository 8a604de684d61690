"""The register draws 50 units a page (home page and Units); downloads keep every unit."""

from __future__ import annotations

import csv
import io
import re

from tests.conftest import sign_in


def unit_codes(html: str) -> list[str]:
    """Codes of the units in the register table, in page order."""
    table = html[html.index("escalate-register") :]
    table = table[: table.index("</table>")]
    return re.findall(r'nhsuk-u-secondary-text-color">(R\d{3})</span>', table)


def test_a_large_register_is_paged_and_the_download_keeps_every_unit(
    app, client, create_person, create_unit
):
    ceo = create_person("ceo")
    for n in range(1, 56):
        create_unit(code=f"R{n:03d}", name=f"Directorate {n}")
    assert sign_in(client, ceo.email).status_code == 302

    first = client.get("/units/")
    assert first.status_code == 200
    assert unit_codes(first.text) == [f"R{n:03d}" for n in range(1, 51)]
    assert "page 1 of 2" in first.text
    assert 'href="/units/?page=2"' in first.text

    second = client.get("/units/?page=2")
    assert unit_codes(second.text) == [f"R{n:03d}" for n in range(51, 56)]
    assert 'href="/units/?page=1"' in second.text

    # A page past the end shows the last page rather than an empty table.
    assert unit_codes(client.get("/units/?page=9").text) == unit_codes(second.text)

    home = client.get("/")
    assert "55 units you can see" in home.text
    assert len(unit_codes(home.text)) == 50
    assert "The rest of the register: 5 more units" in home.text

    download = client.get("/units/?format=csv")
    rows = list(csv.DictReader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert [row["Code"] for row in rows] == [f"R{n:03d}" for n in range(1, 56)]


def test_a_small_register_has_no_pages(app, client, create_person, create_unit):
    ceo = create_person("ceo")
    for n in range(1, 4):
        create_unit(code=f"R{n:03d}")
    assert sign_in(client, ceo.email).status_code == 302
    page = client.get("/units/").text
    assert unit_codes(page) == ["R001", "R002", "R003"]
    assert "nhsuk-pagination" not in page
    assert "The rest of the register" not in client.get("/").text
