"""Field selection, value serialisation and input checks shared by the data tools.

* :func:`smart_fields` picks the most useful fields of a model when a client
  names none (spec "Smart Field Selection").
* :func:`read_records` / :func:`jsonable` turn ORM values into JSON: dates as
  ``YYYY-MM-DD`` and datetimes as ``YYYY-MM-DD HH:MM:SS`` (UTC, Odoo's own
  format, accepted back by write/create and domains), many2one as
  ``[id, display_name]``, empty values as ``null`` (except booleans).
* :func:`check_domain`, :func:`check_order`, :func:`check_groupby`,
  :func:`check_aggregate` refuse malformed input with a clear message before
  anything reaches the ORM (``order`` is never passed through unchecked: it
  ends up in SQL).
"""

import base64
import contextlib
import csv
import datetime
import decimal
import io
import re

from markupsafe import Markup

from . import compat
from .errors import Refusal
from .redact import is_sensitive

# a model, field or method name as the tools accept it
IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.]*$")
SMART_FIELDS_LIMIT = 20
SMART_X2MANY_LIMIT = 3

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Never picked by smart selection (still readable when named explicitly).
TECHNICAL_FIELDS = frozenset(
    {
        "__last_update",
        "create_uid",
        "write_uid",
        "website_message_ids",
        "access_token",
        "access_url",
        "access_warning",
        "has_message",
        "my_activity_date_deadline",
        "parent_path",
        "display_type",
    }
)
TECHNICAL_PREFIXES = ("message_", "activity_", "rating_", "signup_", "website_message")
TECHNICAL_SUFFIXES = ("_sanitized",)
SKIPPED_TYPES = frozenset({"binary", "html", "one2many", "properties", "properties_definition", "json"})
HEAD_FIELDS = ("display_name", "name", "state")
# Fields that, when a model has them, are nearly always wanted right after the head.
KEY_NAMES = ("partner_id", "email", "phone", "date", "amount_total", "ref", "code", "user_id", "company_id")
TAIL_FIELDS = ("active", "sequence", "color", "create_date", "write_date")
KEY_TYPES = frozenset({"many2one", "selection", "date", "datetime", "monetary"})
SIMPLE_TYPES = frozenset({"char", "float", "integer", "boolean", "reference", "many2one_reference"})

# Domain term operators of Odoo 17.0 - 19.0 ('<>' is Odoo's alias of '!=').
TERM_OPERATORS = frozenset(
    {
        "=",
        "!=",
        "<>",
        "<=",
        "<",
        ">",
        ">=",
        "=?",
        "=like",
        "=ilike",
        "like",
        "not like",
        "ilike",
        "not ilike",
        "in",
        "not in",
        "child_of",
        "parent_of",
        "any",
        "not any",
    }
)
DOMAIN_OPERATORS = ("&", "|", "!")
CONSTANT_LEAVES = ((1, "=", 1), (0, "=", 1))
DOMAIN_EXAMPLE = 'e.g. [["is_company", "=", true], ["name", "ilike", "acme"]]'

_ORDER_PART = re.compile(
    r"^\s*(?P<term>[a-zA-Z_][a-zA-Z0-9_]*(?::[a-z_]+)?)(?:\s+(?P<dir>asc|desc))?"
    r"(?:\s+nulls\s+(?P<nulls>first|last))?\s*$",
    re.I,
)
_SPEC = re.compile(r"^(?P<field>[a-zA-Z_][a-zA-Z0-9_]*)(?::(?P<func>[a-z_]+))?$")


# -- smart field selection ---------------------------------------------------


def _eligible(records, name, field):
    if name in TECHNICAL_FIELDS or name.startswith(TECHNICAL_PREFIXES) or name.endswith(TECHNICAL_SUFFIXES):
        return False
    if field.type in SKIPPED_TYPES or is_sensitive(name) or name == "id":
        return False
    if not field.store and name != "display_name" and not getattr(field, "inherited", False):
        return False  # non-stored computed fields can be expensive and are rarely what is wanted
    if field.type == "many2many" and (field.comodel_name.startswith("ir.") or field.comodel_name == "res.groups"):
        return False  # technical links (groups, attachments …) are long lists of ids
    if name.startswith("image_") or name.startswith("avatar_"):
        return False
    return compat.field_accessible(field, records)


def smart_fields(records, prefer=(), limit=SMART_FIELDS_LIMIT):
    """The most useful readable fields of ``records``' model, at most ``limit``.

    Order: display_name, name, state, then ``prefer`` (e.g. the fields just
    written), required and key fields (many2one, selection, dates, monetary),
    simple fields (char, numbers, booleans), text, a few many2many, and
    active/sequence/create_date/write_date last. Binary, HTML, one2many,
    non-stored computed, chatter/activity, password- and token-like fields are
    left out.
    """
    fields = records._fields
    eligible = [name for name, field in fields.items() if _eligible(records, name, field)]

    def rank(name):
        field = fields[name]
        if name in HEAD_FIELDS:
            return (0, HEAD_FIELDS.index(name))
        if name in prefer:
            return (1, list(prefer).index(name))
        if name in TAIL_FIELDS:
            return (6, TAIL_FIELDS.index(name))
        if name in KEY_NAMES:
            return (2, KEY_NAMES.index(name))
        if field.required and field.type != "many2many":
            return (2, len(KEY_NAMES))
        if field.type in KEY_TYPES:
            return (3, 0)
        if field.type in SIMPLE_TYPES:
            return (4, 0)
        return (5, 0 if field.type == "text" else 1)

    position = {name: i for i, name in enumerate(fields)}
    ranked = sorted(eligible, key=lambda name: (*rank(name), position[name]))
    chosen = []
    x2many = 0
    for name in ranked:
        if fields[name].type == "many2many":
            if x2many >= SMART_X2MANY_LIMIT:
                continue
            x2many += 1
        chosen.append(name)
        if len(chosen) >= limit:
            break
    return chosen


# -- serialisation -----------------------------------------------------------


def format_date(value):
    if isinstance(value, datetime.datetime):
        return value.strftime(DATETIME_FORMAT)
    return value.strftime(DATE_FORMAT)


def format_date_or_none(value):
    return format_date(value) if value else None


def jsonable(value, depth=0):
    """Convert any ORM/Python value into JSON-friendly data."""
    if depth > 20:
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, datetime.date):
        return format_date(value)
    if isinstance(value, datetime.time | datetime.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    if hasattr(value, "_name") and hasattr(value, "_ids"):  # a recordset
        return record_refs(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def record_refs(records, max_names=100):
    """A recordset as data: ``{"model", "ids"}`` plus ``records`` [[id, display_name]…] when readable."""
    data = {"model": records._name, "ids": list(records._ids)}
    if records and len(records) <= max_names and not records._abstract and compat.has_access(records, "read"):
        with contextlib.suppress(Exception):  # names are a convenience; the ids are the answer
            data["records"] = [[rec.id, rec.display_name] for rec in records]
    return data


def _value(field, value):
    if field.type == "boolean":
        return bool(value)
    if value is False or value is None:
        return None
    if field.type == "many2one" and isinstance(value, tuple | list):
        return [value[0], str(value[1]) if len(value) > 1 else None]
    return jsonable(value)


def read_records(records, field_names, searched=False):
    """``records.read(field_names)`` as JSON-friendly dicts (``id`` first), in ``records``' order.

    ``searched``: the records come straight from a search (record rules already applied), so, like
    Odoo's own ``search_read``, only field access is checked before formatting; ``read()`` would
    evaluate the record rules again, in Python, record by record.
    """
    if not records:
        return []
    fields = records._fields
    names = [f for f in field_names if f != "id"]
    if searched:
        rows = records._read_format(fnames=compat.checked_field_names(records, "read", names))
    else:
        rows = records.read(names)
    out = []
    for row in rows:
        item = {"id": row["id"]}
        for name in field_names:
            if name != "id" and name in row:
                item[name] = _value(fields[name], row[name])
        out.append(item)
    return out


# -- input checks --------------------------------------------------------------


def check_field_names(records, names, what="fields"):
    """Refuse unknown or malformed field names (``what`` names the argument in messages)."""
    bad = [n for n in names if not isinstance(n, str) or not IDENTIFIER.match(n) or "." in n]
    if bad:
        raise Refusal("invalid_input", f"{what}: {', '.join(map(repr, bad))} is not a valid field name")
    unknown = [n for n in names if n not in records._fields]
    if unknown:
        raise Refusal("invalid_input", f"{what}: unknown field(s) on {records._name}: {', '.join(unknown)}")
    return list(names)


def normalize_values(records, values, what="values"):
    """Check the field names of a ``{field: value}`` dict; accept a many2one given back as [id, name]."""
    if not isinstance(values, dict) or not values:
        raise Refusal("invalid_input", f'{what}: must be a non-empty object {{field: value}}, e.g. {{"name": "Acme"}}')
    check_field_names(records, list(values), what)
    if "id" in values:
        raise Refusal("invalid_input", f"{what}: 'id' cannot be set")
    out = {}
    for name, value in values.items():
        field = records._fields[name]
        if (
            field.type == "many2one"
            and isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], int)
            and isinstance(value[1], str | type(None))
        ):
            value = value[0]
        check_value(records, field, value, f"{what}.{name}")
        out[name] = value
    return out


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# field type -> (accepts a non-empty value, what is expected); None/False always mean "empty"
_VALUE_TYPES = {
    "many2one": (lambda v: _is_int(v) and v > 0, "a record id (integer)"),
    "many2one_reference": (_is_int, "a record id (integer)"),
    "integer": (_is_int, "an integer"),
    "float": (lambda v: _is_int(v) or isinstance(v, float), "a number"),
    "monetary": (lambda v: _is_int(v) or isinstance(v, float), "a number"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "char": (lambda v: isinstance(v, str), "a string"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "html": (lambda v: isinstance(v, str), "a string"),
    "selection": (lambda v: isinstance(v, str | int) and not isinstance(v, bool), "one of the selection values"),
    "date": (lambda v: isinstance(v, str), 'a date string "YYYY-MM-DD"'),
    "datetime": (lambda v: isinstance(v, str), 'a UTC datetime string "YYYY-MM-DD HH:MM:SS"'),
    "binary": (lambda v: isinstance(v, str), "a base64 string"),
    "one2many": (lambda v: isinstance(v, list), "a list of commands, e.g. [[0, 0, {...}]]"),
    "many2many": (lambda v: isinstance(v, list), "a list of commands or ids, e.g. [[6, 0, [1, 2]]]"),
    "reference": (lambda v: isinstance(v, str), 'a string "model,id"'),
}


def check_value(records, field, value, where):
    """Refuse a value of the wrong JSON type for the field (the ORM would coerce some silently)."""
    if value is None or value is False:
        return
    accepts, expected = _VALUE_TYPES.get(field.type, (None, None))
    if accepts is not None and not accepts(value):
        raise Refusal("invalid_input", f"{where}: expected {expected} for a {field.type} field, got {value!r}")
    if field.type == "selection":
        allowed = [key for key, _label in field._description_selection(records.env)]
        if value not in allowed:
            raise Refusal("invalid_input", f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")


def _follow_path(records, path, leaf, what):
    """Check a dotted field path; return (model of the last field, last field)."""
    model = records
    parts = path.split(".")
    field = None
    for i, part in enumerate(parts):
        if not IDENTIFIER.match(part) or "." in part:
            raise Refusal("invalid_input", f"{what}: {path!r} is not a valid field path (in {leaf!r})")
        field = model._fields.get(part)
        if field is None:
            raise Refusal("invalid_input", f"{what}: unknown field {part!r} on {model._name} (in {leaf!r})")
        if i == len(parts) - 1:
            break
        if field.type == "properties":
            return model, field  # the rest names a property
        if not field.relational:
            raise Refusal(
                "invalid_input",
                f"{what}: {part!r} on {model._name} is not a relational field, cannot follow "
                f"{'.'.join(parts[i + 1 :])!r} (in {leaf!r})",
            )
        model = model.env[field.comodel_name]
    return model, field


# Size limits of a domain (an oversized one is refused before it reaches the ORM and PostgreSQL)
DOMAIN_MAX_TERMS = 1000
DOMAIN_MAX_LIST = 10000  # values of an 'in' / 'not in' list
DOMAIN_MAX_TEXT = 10000  # characters of a text value


def check_domain(records, domain, what="domain"):
    """Validate an Odoo domain (structure, operators, field paths); return it with leaves as tuples."""
    if domain is None:
        return []
    if not isinstance(domain, list | tuple):
        raise Refusal("invalid_input", f"{what}: must be a list of conditions, {DOMAIN_EXAMPLE}")
    if len(domain) > DOMAIN_MAX_TERMS:
        raise Refusal("limit_exceeded", f"{what}: {len(domain)} terms, max {DOMAIN_MAX_TERMS}")
    expected = 1
    out = []
    for pos, item in enumerate(domain):
        if expected == 0:
            expected = 1  # implicit '&' between top-level terms
        where = f"{what}[{pos}]"
        if isinstance(item, str) and item in DOMAIN_OPERATORS:
            if item != "!":
                expected += 1
            out.append(item)
            continue
        if not isinstance(item, list | tuple) or len(item) != 3:
            raise Refusal(
                "invalid_input",
                f"{where}: {item!r} is neither a condition [field, operator, value] nor one of "
                f"'&', '|', '!' ({DOMAIN_EXAMPLE})",
            )
        path, operator, value = item
        if tuple(item) in CONSTANT_LEAVES:
            out.append(tuple(item))
            expected -= 1
            continue
        if not isinstance(path, str) or not path:
            raise Refusal("invalid_input", f"{where}: the field of {list(item)!r} must be a field name")
        if not isinstance(operator, str) or operator.lower() not in TERM_OPERATORS:
            raise Refusal(
                "invalid_input",
                f"{where}: unknown operator {operator!r} in {list(item)!r} "
                f"(use one of {', '.join(sorted(TERM_OPERATORS))})",
            )
        operator = operator.lower()
        if isinstance(value, list | tuple) and len(value) > DOMAIN_MAX_LIST:
            raise Refusal("limit_exceeded", f"{where}: a list of {len(value)} values, max {DOMAIN_MAX_LIST}")
        if isinstance(value, str) and len(value) > DOMAIN_MAX_TEXT:
            raise Refusal("limit_exceeded", f"{where}: a value of {len(value)} characters, max {DOMAIN_MAX_TEXT}")
        model, field = _follow_path(records, path, list(item), where)
        if operator in ("any", "not any"):
            if not field.relational:
                raise Refusal("invalid_input", f"{where}: {operator!r} needs a relational field ({list(item)!r})")
            value = check_domain(model.env[field.comodel_name], value, f"{where}[2]")
        elif operator in ("in", "not in") and not isinstance(value, list | tuple):
            raise Refusal("invalid_input", f"{where}: {operator!r} needs a list value ({list(item)!r})")
        elif isinstance(value, dict):
            raise Refusal("invalid_input", f"{where}: an object is not a valid value ({list(item)!r})")
        out.append((path, operator, list(value) if isinstance(value, tuple) else value))
        expected -= 1
    if out and expected != 0:
        raise Refusal(
            "invalid_input",
            f"{what}: the operators '&', '|' and '!' are missing {expected} operand(s) ({DOMAIN_EXAMPLE})",
        )
    return out


def check_order(records, order, terms=None):
    """Validate an ``order`` string: comma-separated ``<field> [asc|desc] [nulls first|last]``.

    ``terms`` (aggregation): the set of allowed terms (groupby / aggregate specs)
    instead of the model's stored fields. Returns the normalised string or None.
    """
    if order is None or not str(order).strip():
        return None
    if not isinstance(order, str) or len(order) > 500:
        raise Refusal("invalid_input", "order: must be a string like 'name asc, id desc'")
    parts = []
    for part in order.split(","):
        match = _ORDER_PART.match(part)
        if not match:
            raise Refusal(
                "invalid_input", f"order: {part.strip()!r} is not '<field> [asc|desc]' (e.g. 'date desc, id')"
            )
        term = match["term"]
        if terms is not None:
            if term not in terms:
                raise Refusal(
                    "invalid_input",
                    f"order: {term!r} is neither a groupby nor an aggregate of this query ({', '.join(terms)})",
                )
        else:
            field = records._fields.get(term)
            if field is None or ":" in term:
                raise Refusal("invalid_input", f"order: unknown field {term!r} on {records._name}")
            if not field.store:
                raise Refusal("invalid_input", f"order: cannot sort on {term!r}: it is not stored in the database")
        text = term + (f" {match['dir'].lower()}" if match["dir"] else "")
        if match["nulls"]:
            text += f" nulls {match['nulls'].lower()}"
        parts.append(text)
    return ", ".join(parts)


def check_groupby(records, spec, default_granularity="month"):
    """Validate ``field`` or ``field:granularity``; return the spec as ``_read_group`` wants it."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if not match:
        raise Refusal("invalid_input", f"groupby: {spec!r} is not '<field>' or '<date field>:<granularity>'")
    name, granularity = match["field"], match["func"]
    field = records._fields.get(name)
    if field is None:
        raise Refusal("invalid_input", f"groupby: unknown field {name!r} on {records._name}")
    if not field.store:
        raise Refusal("invalid_input", f"groupby: cannot group by {name!r}: it is not stored in the database")
    if field.type in ("date", "datetime"):
        granularity = granularity or default_granularity
        if granularity not in compat.READ_GROUP_GRANULARITIES:
            raise Refusal(
                "invalid_input",
                f"groupby: unknown granularity {granularity!r} in {spec!r} "
                f"(use {', '.join(compat.READ_GROUP_GRANULARITIES)})",
            )
        return f"{name}:{granularity}"
    if granularity:
        raise Refusal("invalid_input", f"groupby: {name!r} is a {field.type} field; a granularity needs a date field")
    if field.type in SKIPPED_TYPES:
        raise Refusal("invalid_input", f"groupby: cannot group by the {field.type} field {name!r}")
    return name


NUMERIC = frozenset({"integer", "float", "monetary"})


def check_aggregate(records, spec):
    """Validate ``field:function`` (or ``field`` with a default aggregator); return the full spec."""
    if spec == "__count":
        return spec
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if not match:
        raise Refusal("invalid_input", f"fields: {spec!r} is not '<field>:<function>' (e.g. 'amount_total:sum')")
    name, func = match["field"], match["func"]
    field = records._fields.get(name)
    if field is None:
        raise Refusal("invalid_input", f"fields: unknown field {name!r} on {records._name}")
    if not field.store:
        raise Refusal("invalid_input", f"fields: cannot aggregate {name!r}: it is not stored in the database")
    if not func:
        func = compat.field_aggregator(field)
        if not func:
            raise Refusal(
                "invalid_input", f"fields: {name!r} has no default aggregate; name one, e.g. '{name}:count_distinct'"
            )
    if func not in compat.READ_GROUP_AGGREGATES:
        raise Refusal(
            "invalid_input",
            f"fields: unknown aggregate function {func!r} in {spec!r} (use {', '.join(compat.READ_GROUP_AGGREGATES)})",
        )
    if func in ("sum", "avg") and field.type not in NUMERIC:
        raise Refusal("invalid_input", f"fields: {func} needs a numeric field; {name!r} is a {field.type} field")
    if func in ("min", "max") and field.type not in NUMERIC | {"date", "datetime"}:
        raise Refusal("invalid_input", f"fields: {func} needs a number or a date; {name!r} is a {field.type} field")
    if func in ("bool_and", "bool_or") and field.type != "boolean":
        raise Refusal("invalid_input", f"fields: {func} needs a boolean field; {name!r} is a {field.type} field")
    if field.type in ("one2many", "many2many", "binary", "html"):
        raise Refusal("invalid_input", f"fields: cannot aggregate the {field.type} field {name!r}")
    return f"{name}:{func}"


# -- text rendering --------------------------------------------------------------


def cell(value, width=60):
    """One value as short text for tables and lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str | type(None)):
            text = value[1] or str(value[0])  # many2one [id, name]
        else:
            text = ", ".join(cell(v, width) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={cell(v, width)}" for k, v in value.items())
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(rows, columns):
    def esc(text):
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(esc(cell(row.get(c))) for c in columns) + " |")
    return "\n".join(lines)


def csv_writer(out):
    """The one CSV writer of the tools, RFC 4180: comma separated, CRLF line ends, a cell holding a comma, a
    double quote, a CR or a LF quoted (so no spreadsheet starts a new row inside it)."""
    return csv.writer(out, lineterminator="\r\n")


def csv_table(header, rows):
    """CSV text of a header and rows of cells (see :func:`csv_writer`)."""
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def csv_text(rows, columns):
    """CSV text of records as ``_ocore_read`` returns them: relational values as their names."""
    return csv_table(columns, (
        [cell(v, 10_000) if isinstance(v, list | dict) else ("" if v is None else v) for v in map(row.get, columns)]
        for row in rows))


def records_text(model, rows, columns, page):
    """Human-readable rendering of a page of records: a table for a few columns, else a list."""
    total = page["total"] if page["total"] is not None else "more"
    head = f"{model}: {len(rows)} of {total} record(s)"
    if page["offset"]:
        head += f" (from offset {page['offset']})"
    if page["has_more"]:
        head += f". More: call again with offset={page['next_offset']}"
    if not rows:
        return head + "."
    columns = ["id", *[c for c in columns if c != "id"]]
    if len(columns) <= 6:
        return head + "\n\n" + markdown_table(rows, columns)
    blocks = []
    for row in rows:
        title = cell(row.get("display_name") or row.get("name")) or f"#{row['id']}"
        lines = [f"## {title} (id {row['id']})"]
        lines += [
            f"- {c}: {cell(row.get(c))}"
            for c in columns
            if c not in ("id", "display_name") and row.get(c) not in (None, "", [])
        ]
        blocks.append("\n".join(lines))
    return head + "\n\n" + "\n\n".join(blocks)
