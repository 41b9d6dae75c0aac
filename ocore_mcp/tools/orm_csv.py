"""CSV import and export (``export_csv``, ``import_csv``) of the "orm" family.

The product text files these tools under the ORM permission category ("CSV
Import and Export … Category: orm (uses ORM permission category)"), so they are
tools of the orm family (``ocore.mcp.tools.orm``, category ``orm``), in a file of
their own: a key allowed the ORM tools may move the same data as CSV. They run
as the key owner through Odoo's own engines: ``export_data`` (which also
enforces Odoo's "export" right) and ``load`` (the engine of Odoo's import
screen: names for many2one, labels for selections, external ids in an ``id``
column).

Spreadsheet formula injection: a text cell that starts with ``=``, ``@``, a tab or
a carriage return, or with ``+``/``-`` followed by anything but a number, is
written (export) and stored (import, text fields) with a leading apostrophe, so
no spreadsheet evaluates it. Cells of numeric, date, selection and relational
columns are left to Odoo's converters, which never store a formula as such.
"""

import csv
import difflib
import io
import re
from typing import Annotated, Literal

from odoo import _, models
from odoo.exceptions import UserError
from pydantic import Field

from ..lib.tooling import mcp_tool
from ..lib import fields as fieldlib
from ..lib.errors import Refusal

EXPORT_DEFAULT_ROWS = 500
EXPORT_MAX_ROWS = 5000
IMPORT_MAX_ROWS = 1000
IMPORT_BATCH = 100
IMPORT_MAX_CHARS = 5 * 1024 * 1024
MAX_REPORTED_ERRORS = 200
FORMULA_START = ("=", "@", "\t", "\r")
SIGNED_NUMBER = re.compile(r"^[+-][0-9 ().,/+-]*$")
TEXT_TYPES = frozenset({"char", "text", "html"})
NOT_EXPORTABLE = frozenset({"one2many", "binary", "properties", "properties_definition", "json"})


def is_formula(value):
    """Whether a spreadsheet would evaluate this cell (a signed number is harmless)."""
    if not isinstance(value, str) or not value:
        return False
    if value.startswith(FORMULA_START):
        return True
    return value[0] in "+-" and not SIGNED_NUMBER.match(value)


def neutralise(value):
    return "'" + value if is_formula(value) else value


class OrmCsvTools(models.AbstractModel):
    _inherit = "ocore.mcp.tools.orm"

    def _ocore_labels(self, records, names):
        labels = {}
        counts = {}
        for name in names:
            label = records._fields[name].string or name
            counts[label] = counts.get(label, 0) + 1
            labels[name] = label
        return {name: (label if counts[label] == 1 else f"{label} ({name})") for name, label in labels.items()}

    @mcp_tool("orm", title="Export CSV")
    def _tool_export_csv(self, model: str, domain: list | None = None, fields: list[str] | None = None,
                         limit: Annotated[int, Field(ge=1, le=EXPORT_MAX_ROWS)] = EXPORT_DEFAULT_ROWS,
                         offset: Annotated[int, Field(ge=0)] = 0, order: str | None = None,
                         header: Literal["label", "name"] = "label") -> dict:
        """Export records as CSV.

        Args:
            fields: Stored fields.
        """
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        order = self._ocore_order(records, order)
        if fields:
            names = self._ocore_fields(records, fields)
            bad = [n for n in names if records._fields[n].type in NOT_EXPORTABLE]
            if bad:
                raise Refusal("invalid_input", f"fields: {', '.join(bad)} cannot be exported to a flat CSV "
                              f"({', '.join(sorted({records._fields[n].type for n in bad}))})")
            unstored = [n for n in names if not records._fields[n].store]
            if unstored:
                raise Refusal("invalid_input", f"fields: {', '.join(unstored)} are not stored fields")
        else:
            names = [n for n in self._ocore_smart_fields(records)
                     if records._fields[n].store and records._fields[n].type not in NOT_EXPORTABLE]
        found = records.search(domain, offset=offset, limit=limit, order=order)
        total = records.search_count(domain) if len(found) == limit or offset else offset + len(found)
        datas = found.export_data(names)["datas"] if found else []
        headers = self._ocore_labels(records, names) if header == "label" else {n: n for n in names}

        call = self._call()
        budget = (call.max_response_kb if call else 50) * 1024
        buf = io.StringIO()
        # the tools' one CSV writer (RFC 4180): a cell holding a CR or LF is always quoted, so a spreadsheet
        # cannot start a new row (and a formula) inside it
        writer = fieldlib.csv_writer(buf)
        writer.writerow([neutralise(headers[n]) for n in names])
        neutralised = 0
        written = 0
        for row in datas:
            cells = []
            for value in row:
                if isinstance(value, str):
                    safe = neutralise(value)
                    neutralised += safe is not value
                    cells.append(safe)
                else:
                    cells.append("" if value is None else value)
            mark = buf.tell()
            writer.writerow(cells)
            if buf.tell() * 2 + 2000 > budget and written:  # the CSV is in the text and in structuredContent
                buf.seek(mark)
                buf.truncate()
                break
            written += 1
        text = buf.getvalue()
        shown = offset + written
        data = {
            "model": records._name,
            "total": total,
            "offset": offset,
            "count": written,
            "has_more": shown < total,
            "next_offset": shown if shown < total else None,
            "columns": [{"name": n, "header": headers[n]} for n in names],
            "neutralised_cells": neutralised,
            "csv": text,
        }
        if written < len(datas):
            data["truncated"] = True
            data["truncation"] = (f"{written} of {len(datas)} rows fit in max_response_size="
                                  f"{call.max_response_kb if call else 50} KB; continue with offset={shown} or "
                                  "raise max_response_size")
        return data

    # -- import ----------------------------------------------------------------------

    def _ocore_import_columns(self, records, headers, mapping):
        """Resolve CSV headers (after ``field_mapping``) to load() field paths; refuse unknown ones."""
        fields = records._fields
        by_label = {}
        for name, field in fields.items():
            by_label.setdefault((field.string or "").strip().lower(), []).append(name)
        columns, problems = [], []
        for header in headers:
            target = mapping.get(header, header).strip()
            base, _sep, suffix = target.partition("/")
            if target in ("id", ".id"):
                columns.append(target)
                continue
            name = None
            if base in fields:
                name = base
            else:
                paren = re.match(r"^.*\(([a-z_][a-z0-9_]*)\)$", base)
                candidates = by_label.get(base.lower(), [])
                if paren and paren.group(1) in fields:
                    name = paren.group(1)
                elif len(candidates) == 1:
                    name = candidates[0]
            if name is None:
                close = difflib.get_close_matches(base, list(fields), n=3)
                problems.append(f"{header!r} is not a field of {records._name}"
                                + (f" (did you mean {', '.join(close)}?)" if close else ""))
                continue
            field = fields[name]
            if suffix and (suffix not in ("id", ".id") or not field.relational):
                problems.append(f"{header!r}: only <relational field>/id is supported as a sub-path")
                continue
            if field.compute and not field.inverse and not field.store or name in ("id", "display_name"):
                problems.append(f"{header!r} ({name}) is computed and read-only")
                continue
            if field.type == "one2many" and not suffix:
                problems.append(f"{header!r} ({name}) is a one2many field; import the related model instead")
                continue
            columns.append(f"{name}/{suffix}" if suffix else name)
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            problems.append(f"several columns map to {', '.join(duplicated)}")
        if problems:
            raise Refusal("invalid_input", "CSV headers: " + "; ".join(problems))
        return columns

    @mcp_tool("orm", kind="write", title="Import CSV")
    def _tool_import_csv(self, model: str, csv_content: Annotated[str, Field(min_length=1)],
                         field_mapping: dict[str, str] | None = None,
                         delimiter: Literal[",", ";", "\t", "|"] = ",") -> dict:
        """Import CSV (headers: field names or labels, id = external id; max 1000 rows in batches of 100).

        Args:
            csv_content: With a header line.
            field_mapping: CSV header -> field name.
        """
        records = self._data_model(model)
        if len(csv_content) > IMPORT_MAX_CHARS:
            raise Refusal("limit_exceeded", f"csv_content: {len(csv_content)} characters, max {IMPORT_MAX_CHARS}")
        try:
            rows = list(csv.reader(io.StringIO(csv_content.lstrip("\ufeff")), delimiter=delimiter))
        except csv.Error as exc:
            raise Refusal("invalid_input", f"csv_content: not valid CSV ({exc})") from None
        rows = [r for r in rows if any(cell.strip() for cell in r)]
        if not rows:
            raise Refusal("invalid_input", "csv_content: no header line")
        headers = [h.strip() for h in rows[0]]
        data = rows[1:]
        if not data:
            raise Refusal("invalid_input", "csv_content: a header line but no data rows")
        if len(data) > IMPORT_MAX_ROWS:
            raise Refusal("limit_exceeded", f"csv_content: {len(data)} data rows, max {IMPORT_MAX_ROWS} per call; "
                          "nothing was imported. Split the file.")
        mapping = field_mapping or {}
        unknown = [k for k in mapping if k not in headers]
        if unknown:
            raise Refusal("invalid_input", f"field_mapping: {', '.join(map(repr, unknown))} are not CSV headers "
                          f"(headers: {', '.join(map(repr, headers))})")
        if any(not h for h in headers):
            raise Refusal("invalid_input", "CSV headers: a column has an empty header")
        columns = self._ocore_import_columns(records, headers, mapping)
        text_cols = {i for i, c in enumerate(columns) if "/" not in c and c in records._fields
                     and records._fields[c].type in TEXT_TYPES}

        errors, neutralised, batches, imported, failed_rows = [], [], [], [], []
        prepared = []  # (csv row number, cells) of the well-formed rows
        for number, row in enumerate(data, start=1):
            if len(row) > len(columns):
                errors.append({"row": number, "field": None,
                               "message": f"{len(row)} cells for {len(columns)} columns; row not imported"})
                failed_rows.append(number)
                continue
            cells = list(row) + [""] * (len(columns) - len(row))
            for i in text_cols:
                if is_formula(cells[i]):
                    cells[i] = "'" + cells[i]
                    neutralised.append({"row": number, "column": headers[i]})
            prepared.append((number, cells))

        call = self._call()
        cr = self.env.cr
        chunks = [prepared[i:i + IMPORT_BATCH] for i in range(0, len(prepared), IMPORT_BATCH)]
        for index, chunk in enumerate(chunks, start=1):
            numbers = [n for n, _cells in chunk]
            batch = {"batch": index, "rows": f"{numbers[0]}-{numbers[-1]}", "count": len(chunk)}
            try:
                with cr.savepoint():
                    result = records.load(columns, [cells for _n, cells in chunk])
            except UserError as exc:
                result = {"ids": False, "messages": [{"type": "error", "message": str(exc)}]}
            row_errors = 0
            for message in result.get("messages") or []:
                if message.get("type") != "error":
                    continue
                span = message.get("rows") or {}
                start = span.get("from")
                number = numbers[start] if isinstance(start, int) and 0 <= start < len(numbers) else None
                row_errors += 1
                errors.append({"row": number, "field": message.get("field"), "message": message.get("message")})
            if result.get("ids"):
                batch.update(status="imported", ids=result["ids"])
                imported += result["ids"]
            else:
                batch.update(status="failed", errors=row_errors or 1,
                             note="no row of this batch was imported; fix the reported rows and import them again")
                failed_rows += numbers
            batches.append(batch)
            if call is not None:
                call.progress(index, len(chunks), f"batch {index}/{len(chunks)}: {batch['status']}")

        report = {
            "model": records._name,
            "columns": columns,
            "rows": len(data),
            "imported": len(imported),
            "ids": imported[:1000],
            "batches": batches,
            "failed_rows": sorted(failed_rows),
            "errors": errors[:MAX_REPORTED_ERRORS],
            "error_count": len(errors),
            "neutralised_cells": neutralised[:100],
        }
        if not imported:
            head = "; ".join(f"row {e['row']}: {e['message']}" for e in errors[:5])
            raise UserError(_("nothing was imported: %(count)s error(s). %(errors)s", count=len(errors), errors=head))
        return report
