"""Search and aggregation tools (category "search").

``count`` is an ORM tool (tools/orm.py). Grouping goes through ``_read_group``
(lib/compat.py), the API shared by Odoo 17.0, 18.0 and 19.0; it checks read
access on the model and on every field it groups or aggregates.
"""

import difflib
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import Field

from odoo import models
from odoo.exceptions import AccessError
from odoo.tools.mail import html2plaintext

from ..lib import compat
from ..lib import fields as fieldlib
from ..lib.shaping import TextResult
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

Limit = Annotated[int, Field(ge=1, le=2000)]
GroupLimit = Annotated[int, Field(ge=1, le=1000)]
Offset = Annotated[int, Field(ge=0)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]

MAX_GROUPBY = 5
MAX_DISTINCT_FIELDS = 10
# fuzzy_search candidates: records matching a query token, then a 3-letter prefix of one, then a
# plain scan of the remaining records; at most this many of each are scored.
FUZZY_TOKEN_CANDIDATES = 1000
FUZZY_PREFIX_CANDIDATES = 500
FUZZY_SCAN = 1000
FUZZY_TYPES = frozenset({"char", "text", "selection", "many2one", "html"})
FUZZY_TEXT_MAX = 2000  # characters of a value compared with the query

_WORD = re.compile(r"[^\w]+")


def normalize_text(text):
    """Lower-case, accents removed, punctuation as spaces, single spaces."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(_WORD.sub(" ", text).split())


def similarity(query, text):
    """difflib similarity of two normalised strings: the best of the whole-string ratio and the mean,
    over the query's words, of each word's best ratio against the text's words."""
    if not query or not text:
        return 0.0
    whole = difflib.SequenceMatcher(None, query, text).ratio()
    words = set(text.split())
    per_word = [max(difflib.SequenceMatcher(None, q, w).ratio() for w in words) for q in query.split()]
    return max(whole, sum(per_word) / len(per_word))


def date_label(value, granularity):
    """A date group's label: 2024-03-05 (day, week start), 2024-03, 2024-Q1, 2024."""
    if granularity == "month":
        return value.strftime("%Y-%m")
    if granularity == "quarter":
        return f"{value.year}-Q{(value.month - 1) // 3 + 1}"
    if granularity == "year":
        return str(value.year)
    return value.strftime(fieldlib.DATE_FORMAT)


class SearchTools(models.AbstractModel):
    _name = "ocore.mcp.tools.search"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: search and aggregation"

    # -- helpers -------------------------------------------------------------------

    def _ocore_group_value(self, records, spec, value):
        name, _sep, granularity = spec.partition(":")
        field = records._fields[name]
        if field.type == "boolean":
            return bool(value)
        if value is None or value is False:
            return None
        if hasattr(value, "_name") and hasattr(value, "_ids"):  # many2one / many2many group
            if not value:
                return None
            try:
                return [value.id, value.display_name]
            except AccessError:
                return [value.id, f"{value._name},{value.id}"]
        if granularity and hasattr(value, "year"):
            return date_label(value, granularity)
        return fieldlib.jsonable(value)

    def _ocore_groups(self, records, domain, groupby, aggregates, order=None, limit=None, offset=0):
        """Rows of ``_read_group`` as dicts keyed by spec, and whether more groups exist."""
        fetch = limit + 1 if limit and groupby else None
        raw = compat.read_group(
            records, domain, groupby, aggregates, order=order, limit=fetch, offset=offset if groupby else 0
        )
        has_more = bool(fetch) and len(raw) > limit
        rows = []
        for values in raw[:limit] if fetch else raw:
            row = {}
            for spec, value in zip(groupby, values[: len(groupby)], strict=True):
                row[spec] = self._ocore_group_value(records, spec, value)
            for spec, value in zip(aggregates, values[len(groupby) :], strict=True):
                row[spec] = fieldlib.jsonable(value)
            rows.append(row)
        return rows, has_more

    # -- tools -----------------------------------------------------------------------

    @mcp_tool("search", kind="read", title="Search with count")
    def _tool_advanced_search(
        self,
        model: str,
        domain: list,
        fields: list[str] | None = None,
        limit: Limit = 80,
        offset: Offset = 0,
        order: str | None = None,
        format: Literal["json", "text"] = "json",  # noqa: A002 - the spec's parameter name
    ) -> dict:
        """Like search_read with a required domain and the total count."""
        return self._ocore_search_page(model, domain, fields, limit, offset, order, format)

    @mcp_tool("search", kind="read", identifier_args=("date_field",), title="Group and aggregate")
    def _tool_aggregation(
        self,
        model: str,
        fields: list[str] | None = None,
        groupby: list[str] | None = None,
        domain: list | None = None,
        preset: Literal["count_by_state", "count_by_date"] | None = None,
        date_field: str | None = None,
        granularity: Literal["day", "week", "month", "quarter", "year"] = "month",
        order: str | None = None,
        limit: GroupLimit = 80,
        offset: Offset = 0,
        format: Literal["json", "table", "csv"] = "json",  # noqa: A002 - the spec's parameter name
    ) -> dict:
        """Group and aggregate (read_group); rows carry __count.

        Args:
            fields: "field:function" (sum, avg, min, max, count, count_distinct, bool_and, bool_or), e.g.
                ["amount_total:sum"].
            groupby: e.g. ["state", "date_order:month"] (day, week, month, quarter, year); omit for totals.
            preset: Instead of groupby.
            date_field: For count_by_date (default create_date).
            order: e.g. "amount_total:sum desc".
        """
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        if preset:
            if groupby:
                raise Refusal("invalid_input", "give either preset or groupby, not both")
            if preset == "count_by_state":
                if "state" not in records._fields:
                    raise Refusal("invalid_input", f"{model} has no 'state' field; use groupby instead")
                groupby = ["state"]
            else:
                date_field = date_field or "create_date"
                field = records._fields.get(date_field)
                if field is None or field.type not in ("date", "datetime"):
                    raise Refusal("invalid_input", f"date_field: {date_field!r} is not a date field of {model}")
                groupby = [f"{date_field}:{granularity}"]
        elif date_field:
            raise Refusal("invalid_input", "date_field is only used with preset count_by_date")
        group_specs = list(dict.fromkeys(fieldlib.check_groupby(records, spec) for spec in groupby or []))
        if len(group_specs) > MAX_GROUPBY:
            raise Refusal("invalid_input", f"groupby: at most {MAX_GROUPBY} fields")
        aggregates = [fieldlib.check_aggregate(records, spec) for spec in fields or [] if spec != "__count"]
        aggregates = [*dict.fromkeys(aggregates), "__count"]
        order = fieldlib.check_order(records, order, terms=[*group_specs, *aggregates])
        rows, has_more = self._ocore_groups(records, domain, group_specs, aggregates, order, limit, offset)
        data = {
            "model": model,
            "groupby": group_specs,
            "aggregates": aggregates,
            "count": len(rows),
            "offset": offset if group_specs else 0,
            "limit": limit,
            "has_more": has_more,
            "next_offset": offset + len(rows) if has_more else None,
            "rows": rows,
        }
        columns = [*group_specs, *aggregates]
        if format == "table":
            head = f"{model}: {len(rows)} group(s)" + (f"; more with offset={data['next_offset']}" if has_more else "")
            return TextResult(head + "\n\n" + fieldlib.markdown_table(rows, columns), data)
        if format == "csv":
            return TextResult(fieldlib.csv_text(rows, columns), data)
        return data

    @mcp_tool("search", kind="read", title="Distinct values")
    def _tool_distinct_field_values(
        self,
        model: str,
        fields: Annotated[list[str], Field(min_length=1, max_length=MAX_DISTINCT_FIELDS)],
        domain: list | None = None,
        limit: GroupLimit = 50,
    ) -> dict:
        """Distinct values of fields with their record counts, most frequent first.

        Args:
            fields: e.g. ["country_id"]; dates by day unless "field:month" (day … year).
            limit: Per field.
        """
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        specs = list(dict.fromkeys(fieldlib.check_groupby(records, spec, "day") for spec in fields))
        result = {}
        for spec in specs:
            rows, has_more = self._ocore_groups(
                records, domain, [spec], ["__count"], order=f"__count desc, {spec}", limit=limit
            )
            values = [{"value": row[spec], "count": row["__count"]} for row in rows]
            distinct = None if has_more else len(values)
            field = records._fields[spec.partition(":")[0]]
            if distinct is None and ":" not in spec and field.type != "many2many":
                # non-empty distinct values, counted by the database
                distinct = compat.read_group(records, domain, [], [f"{field.name}:count_distinct"])[0][0]
            result[spec] = {"distinct_count": distinct, "has_more": has_more, "values": values}
        return {"model": model, "limit": limit, "fields": result}

    @mcp_tool("search", kind="read", title="Fuzzy search")
    def _tool_fuzzy_search(
        self,
        model: str,
        query: Annotated[str, Field(min_length=1, max_length=200)],
        search_fields: list[str] | None = None,
        min_score: Score = 0.6,
        limit: Annotated[int, Field(ge=1, le=200)] = 10,
        domain: list | None = None,
    ) -> dict:
        """Typo-tolerant text search, scored 0-1.

        Args:
            search_fields: Default: the name field.
        """
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        if not search_fields:
            rec_name = records._rec_name
            search_fields = [rec_name if rec_name in records._fields else "display_name"]
        search_fields = list(dict.fromkeys(fieldlib.check_field_names(records, search_fields, "search_fields")))
        for name in search_fields:
            field = records._fields[name]
            if field.type not in FUZZY_TYPES:
                raise Refusal("invalid_input", f"search_fields: {name!r} is a {field.type} field, not text")
        wanted = normalize_text(query)
        if not wanted:
            raise Refusal("invalid_input", "query: contains no letters or digits")
        tokens = [t for t in wanted.split() if len(t) >= 2] or wanted.split()
        searchable = [
            n for n in search_fields if records._fields[n].store or records._fields[n].search or n == "display_name"
        ]

        def any_of(words):
            leaves = [(name, "ilike", word) for name in searchable for word in words]
            return ["|"] * (len(leaves) - 1) + leaves if leaves else []

        passes = []
        if searchable:
            passes.append((any_of(tokens), FUZZY_TOKEN_CANDIDATES))
            prefixes = sorted({t[:3] for t in tokens if len(t) >= 4} - set(tokens))
            if prefixes:
                passes.append((any_of(prefixes), FUZZY_PREFIX_CANDIDATES))
        passes.append(([], FUZZY_SCAN))
        candidates = records.browse()
        truncated = False
        for extra, cap in passes:
            seen = [("id", "not in", candidates.ids)] if candidates else []
            found = records.search(domain + seen + extra, limit=cap)
            truncated = truncated or len(found) == cap
            candidates |= found
        rows = self._ocore_read(candidates, ["display_name", *[n for n in search_fields if n != "display_name"]])
        labels = {
            name: dict(records._fields[name]._description_selection(records.env))
            for name in search_fields
            if records._fields[name].type == "selection"
        }
        scored = []
        for row in rows:
            best = (0.0, None, None)
            for name in search_fields:
                value = row.get(name)
                if name in labels and value is not None:
                    value = labels[name].get(value, value)
                elif records._fields[name].type == "html" and value:
                    value = html2plaintext(value)
                text = fieldlib.cell(value, FUZZY_TEXT_MAX)
                score = similarity(wanted, normalize_text(text))
                if score > best[0]:
                    best = (score, name, text)
            if best[0] >= min_score:
                scored.append(
                    {
                        "id": row["id"],
                        "display_name": row.get("display_name"),
                        "score": round(best[0], 4),
                        "field": best[1],
                        "value": best[2],
                    }
                )
        scored.sort(key=lambda item: (-item["score"], item["id"]))
        data = {
            "model": model,
            "query": query,
            "search_fields": search_fields,
            "min_score": min_score,
            "scanned": len(candidates),
            "count": min(len(scored), limit),
            "matches": len(scored),
            "results": scored[:limit],
        }
        if truncated:
            data["note"] = (
                f"only {len(candidates)} candidate records were scored; add a domain to narrow the search "
                "if the record you expect is missing"
            )
        return data
