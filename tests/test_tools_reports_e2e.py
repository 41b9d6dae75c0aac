"""Report generation end to end through the official SDK client against a real server (real wkhtmltopdf).

How the PDF is checked: Debian's wkhtmltopdf (built without the patched Qt) draws the report's web fonts
as outlines, so the PDF holds no extractable text (``pdftotext`` returns nothing) and no OCR engine is
installed. The test therefore checks that the file is a valid PDF (``pdfinfo``) with one page per
record, that every page is really drawn (``pdftoppm`` images with ink on them, different pages for
different records), and that the HTML rendering of the same report and records names the records.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile

import pytest
from mcp_helpers import data_of, error_of

pytestmark = pytest.mark.anyio

REPORT = "base.report_ir_model_overview"


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


def pdf_pages(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.pdf")
        with open(path, "wb") as fh:
            fh.write(content)
        info = subprocess.run(["pdfinfo", path], capture_output=True, text=True, check=True).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        subprocess.run(["pdftoppm", "-gray", "-r", "30", path, os.path.join(tmp, "page")], check=True)
        images = []
        for name in sorted(n for n in os.listdir(tmp) if n.endswith(".pgm")):
            with open(os.path.join(tmp, name), "rb") as fh:
                images.append(_pgm_pixels(fh.read()))
        text = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True, check=True).stdout
        # what a reader sees: the pages at print resolution, read back by OCR
        subprocess.run(["pdftoppm", "-r", "200", "-png", path, os.path.join(tmp, "ocr")], check=True)
        for name in sorted(n for n in os.listdir(tmp) if n.startswith("ocr") and n.endswith(".png")):
            text += subprocess.run(["tesseract", os.path.join(tmp, name), "-"], capture_output=True, text=True,
                                   check=True).stdout
    return pages, images, text


def _pgm_pixels(data):
    """Pixels of a binary PGM (P5) image."""
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P5"
    width, height = int(fields[1]), int(fields[2])
    return data[pos + 1: pos + 1 + width * height]


@pytest.fixture(scope="module", autouse=True)
def report_url(admin, odoo):
    """wkhtmltopdf fetches the report's stylesheets from report.url (else web.base.url): this server."""
    previous = admin.get_param("report.url")
    admin.set_param("report.url", odoo.url)
    yield
    admin.set_param("report.url", previous)


@pytest.fixture(scope="module")
def models(admin):
    return [r["id"] for r in admin.search_read("ir.model", [("model", "in", ["res.country.group", "res.country.state"])],
                                               ["model"], order="model")]


async def test_pdf_report(mcp_client, slug, models):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "generate_report", report=REPORT, record_ids=models))
        html = data_of(await call(client, slug, "generate_report", report=REPORT, record_ids=models, format="html"))
    content = base64.b64decode(data["data_base64"])
    assert content.startswith(b"%PDF-") and data["mimetype"] == "application/pdf" and data["size"] == len(content)
    assert data["wkhtmltopdf"].startswith("wkhtmltopdf")
    pages, images, text = pdf_pages(content)
    assert pages >= len(models)
    inked = [sum(1 for p in img if p < 128) for img in images]
    assert all(count > 200 for count in inked), inked  # every page has text drawn on it
    assert images[0] != images[-1]  # the two records are different pages
    # the same report and records as HTML: the records are named in it
    page = base64.b64decode(html["data_base64"]).decode()
    assert "res.country.group" in page and "res.country.state" in page
    # the PDF's own text (a wkhtmltopdf that embeds fonts) or, here, its pages read back by OCR
    assert "res.country.group" in text and "res.country.state" in text, text[:2000]


async def test_report_limits_and_refusals(mcp_client, slug, admin, make_key, models):
    many = [r["id"] for r in admin.search_read("ir.model", [], ["id"], limit=51)]
    async with mcp_client() as client:
        assert "max 10 for format=pdf" in error_of(await call(client, slug, "generate_report", report=REPORT,
                                                              record_ids=many[:11]))
        assert "max 50" in error_of(await call(client, slug, "generate_report", report=REPORT, record_ids=many,
                                               format="html"))
        assert "no report" in error_of(await call(client, slug, "generate_report", report="base.nope",
                                                  record_ids=models))
        assert "no ir.model record" in error_of(await call(client, slug, "generate_report", report=REPORT,
                                                           record_ids=[99999999], format="html"))
        assert "larger max_response_size" in error_of(await call(client, slug, "generate_report", report=REPORT,
                                                                 record_ids=models, max_response_size=1))
        # a real report over the 10 MB output limit: the model overview of two large models
        big = [r["id"] for r in admin.search_read("ir.model", [("model", "in", ["res.partner", "res.users"])], ["id"])]
        text = error_of(await call(client, slug, "generate_report", report=REPORT, record_ids=big))
        assert "over the 10 MB limit" in text
    async with mcp_client(key=make_key(models=["res.country"])) as client:
        assert "model allowlist" in error_of(await call(client, slug, "generate_report", report=REPORT,
                                                        record_ids=models, format="html"))
    uid = admin.create_user(f"rep_e2e_{os.getpid()}")
    async with mcp_client(key=admin.create_key(name="report e2e employee", user_id=uid)) as client:
        assert "permission denied" in error_of(await call(client, slug, "generate_report", report=REPORT,
                                                          record_ids=models, format="html"))

