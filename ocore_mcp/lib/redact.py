"""Redaction of secrets before anything is written to the audit log (or kept as knowledge).

Two complementary ways, both needed:

- by name: a value under a credential-like key (``password``, ``api_key``, ``key_hash`` ...), in a
  ``name = value`` / ``"name": "value"`` pair of a text, in a column whose header is a credential name
  (SQL results ``{"columns": [...], "rows": [[...]]}``, CSV text, psql / markdown tables);
- by value: anything shaped like a secret wherever it appears: password hashes (passlib / crypt
  ``$pbkdf2-sha512$...``, bcrypt, argon2, ``$6$``, scrypt, Django style, LDAP ``{SSHA}``, PostgreSQL
  ``md5``), Odoo API keys (40 hex digits) and SHA-256 hashes, this server's key / OAuth / invite tokens,
  JWTs, ``Bearer`` / ``Basic`` credentials, PEM private keys, well-known provider tokens and long random-looking tokens.

Every regular expression is linear in the text (bounded quantifiers, no nested repetition), and the
text paths only look at the part of a text that is kept (``limit``): the audit writer runs on every
call.
"""

import csv
import functools
import io
import itertools
import json
import re

REDACTED = "[REDACTED]"
SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|credential|api[ _-]?key|apikey|private[ _-]?key|authorization|cookie"
    r"|session[ _-]?key|key[ _-]?hash|hash(ed)?[ _-]?(password|key)|totp|otp[ _-]?secret|pwd|(^|[ _-])hash$",
    re.I,
)
# JSON texts larger than this are not parsed for structure (by-value redaction still applies)
JSON_MAX = 4 * 1024 * 1024
MARGIN = 512  # characters past the kept part that are read, so a secret cut by the limit is still recognised
TABLE_HEAD_LINES = 3  # a table's header may follow a title line or two

_HEX = r"[0-9a-fA-F]"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
# (literal needles, one of which the text must contain (None: always tried), pattern): one pass per
# pattern, each skipped unless its needle is there. A single alternation of them all would be several
# times slower: Python's regex engine only scans fast for a pattern that starts with a literal.
_VALUE_RULES = [
    # PEM private keys, also when cut before their END line
    (("PRIVATE KEY",), r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}"
                       r"PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    # modular crypt format: $pbkdf2-sha512$..., $2b$12$..., $argon2id$v=19$..., $6$salt$hash, $y$..., $scrypt$
    (("$",), r"\$(?:pbkdf2(?:-sha(?:1|256|512))?|2[abxy]?|argon2(?:id|i|d)|[1567y]|gy|md5(?:-crypt)?|apr1|scrypt"
             r"|sha(?:1|256|512)(?:-crypt)?|bcrypt(?:-sha256)?|ldap_[a-z0-9_]{1,20}|django_[a-z0-9_]{1,20})\$"
             r"[A-Za-z0-9./+=,:;$-]{4,2000}"),
    # Django / werkzeug style: pbkdf2_sha256$260000$salt$hash, pbkdf2:sha256:600000$salt$hash
    (("pbkdf2", "bcrypt_sha256$", "argon2$", "scrypt$"),
     r"\b(?:pbkdf2_sha(?:1|256|512)|bcrypt_sha256|argon2|scrypt|pbkdf2:sha(?:1|256|512)(?::\d{1,9})?)\$"
     r"[A-Za-z0-9./+=,:;$-]{6,2000}"),
    # this server's secrets: API keys ocore_<10 hex>_<token>, OAuth access / refresh tokens, invites
    (("oco",), r"\boc(?:ore_" + _HEX + r"{10}_[A-Za-z0-9_-]{16,200}|o(?:at|rt)_[A-Za-z0-9_-]{16,200}|inv_" + _HEX
               + r"{8}_[A-Za-z0-9_-]{12,200})"),
    # JWT (three base64url parts starting with a JSON header), also when cut
    (("eyJ",), r"\beyJ[A-Za-z0-9_-]{8,4000}(?:\.[A-Za-z0-9_-]{0,8000}){0,2}"),
    # HTTP credentials (Basic: base64 with an upper-case letter, a digit or padding, not an English word)
    (("bearer",), r"(?i:\bbearer[ \t]+)[A-Za-z0-9._~+/=-]{8,4000}"),
    (("basic", "digest"), r"(?P<basic>\b(?:Basic|BASIC|basic|Digest)[ \t]+[A-Za-z0-9+/]{6,4000}={0,2})"),
    # credentials in a URL: scheme://user:password@host
    (("://",), r"(?<=://)[^/\s:@\"']{0,200}:[^/\s@\"']{1,200}(?=@)"),
    # provider tokens: GitHub, Slack, OpenAI-style, AWS access key ids, Google API keys
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "sk-", "akia", "aiza"),
     r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|xox[abposr]-[A-Za-z0-9-]{10,255}|sk-[A-Za-z0-9_-]{20,255}"
     r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})"),
    # LDAP / passlib ldap_* hashes: {SSHA}base64, {SHA512}..., {CRYPT}$1$...
    (("{",), r"(?i:\{(?:S?SHA(?:1|256|384|512)?|S?MD5|CRYPT|PBKDF2(?:-SHA(?:1|256|512))?|ARGON2|BCRYPT)\})"
             r"[A-Za-z0-9./+=$,:-]{8,2000}"),
    # PostgreSQL's md5 role passwords: md5 and 32 hex digits
    (("md5",), r"\bmd5[0-9a-f]{32}\b"),
    # long runs of token characters: Odoo API keys (40 hex digits), SHA-256 digests (64: key hashes),
    # random-looking tokens (token_urlsafe, base64): checked by _token_run
    (None, r"(?P<run>(?<![A-Za-z0-9_+/=-])[A-Za-z0-9_+/-]{32,8000}={0,2})"),
]
_VALUE_RULES = [(needles, re.compile(pattern)) for needles, pattern in _VALUE_RULES]
# name = value, name: value, "name": "value", 'name': 'value', \"name\":\"value\" (JSON inside a string).
# The value is matched in a lookahead: a pair whose value holds other pairs (a JSON text in a string) is
# looked into as well.
_PAIR_RE = re.compile(
    r"""(?<![\w.])(?P<q>\\?["']?)(?P<name>[A-Za-z_][\w.-]{0,63})(?P=q)[ \t]{0,8}(?P<sep>[:=]|=>)[ \t]{0,8}"""
    r"""(?=(?P<value>\\"(?:[^"\\\n]|\\[^"]){0,4000}\\"|"(?:[^"\\\n]|\\.){0,4000}"|'[^'\n]{0,4000}'"""
    r"""|[^\s,;&}\])"'<>]{1,4000}))"""
)
# an XML element whose tag or name attribute is a credential name: <field name="password">hunter2</field> (Odoo
# data files), <smtp_pass>hunter2</smtp_pass>
_XML_RE = re.compile(
    r"""<(?P<tag>[A-Za-z_][\w.:-]{0,63})(?P<attrs>\s[^<>]{0,300})?>(?P<value>[^<]{1,4000})</(?P=tag)[ \t]{0,8}>"""
)
_XML_NAME_RE = re.compile(r"""\bname[ \t]{0,4}=[ \t]{0,4}["']([^"'\n]{1,64})["']""")
# a SQL literal under a credential alias: SELECT 'hunter2' AS password
_SQL_ALIAS_RE = re.compile(
    r"""'(?P<value>(?:[^'\n]|''){1,4000})'(?:::[A-Za-z ]{1,30})?[ \t]{1,8}(?i:as)[ \t]{1,8}"""
    r"""(?P<name>"[^"\n]{1,63}"|[A-Za-z_]\w{0,62})"""
)
# INSERT INTO t (login, password) VALUES ('x', 'hunter2'): the value at a credential column's position
_SQL_INSERT_RE = re.compile(
    r"""\((?P<columns>[^()'\n]{1,2000})\)[ \t\n]{0,8}(?i:values)[ \t\n]{0,8}\((?P<values>[^()]{1,4000})\)"""
)
# literal words, one of which any sensitive name contains: a fast test before the regular expressions
_NEEDLES = ("pass", "secret", "token", "credential", "api_key", "api-key", "api key", "apikey", "private_key",
            "private-key", "private key", "privatekey", "authorization", "cookie", "session_key", "session-key",
            "session key", "sessionkey", "hash", "totp", "pwd")
_EMPTY_VALUES = frozenset(('""', "''", '\\"\\"', "null", "None", "false", "False", "true", "True", "NULL", REDACTED,
                           f'"{REDACTED}"'))


def is_sensitive(key):
    return isinstance(key, str) and _sensitive_name(key)


@functools.lru_cache(maxsize=4096)
def _sensitive_name(key):
    # the same few keys and column names come back on every call: each is matched once per process
    return bool(SENSITIVE_KEY.search(key))


def _header_sensitive(cell):
    return is_sensitive(cell.strip().strip("\"'`").strip())


def _looks_random(token):
    """A long run of token characters that mixes cases and digits (a secret, a base64 blob), not an
    identifier such as ``sale_order_line_invoice_rel`` or a hex digest handled elsewhere."""
    body = token.rstrip("=")
    return (any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)
            and sum(c.isdigit() for c in body) * 20 >= len(body))


def _value_sub(match):
    kind = match.lastgroup
    if kind == "run":
        token = match.group(0)
        if not any(_HEX_DIGEST.fullmatch(piece) for piece in re.split(r"[+/]", token.rstrip("="))) \
                and not _looks_random(token):
            return token
    elif kind == "basic":
        credential = match.group(0).split(None, 1)[1]
        if not any(c.isupper() or c.isdigit() or c in "+/=" for c in credential):
            return match.group(0)
    return REDACTED


def mentions_secret(text):
    """Whether ``text`` may name a credential (a cheap test: substring search, no regular expression)."""
    low = text.lower()
    return any(needle in low for needle in _NEEDLES)


def _prose(text, match, value, end):
    """``api_token: unknown argument``: a sentence about a credential (an error message), not its value."""
    return (match.group("sep") == ":" and value.isalpha() and value.islower()
            and text[end : end + 1] == " " and text[end + 1 : end + 2].isalpha())


def _xml_sub(match):
    attrs = match.group("attrs") or ""
    named = _XML_NAME_RE.search(attrs)
    value = match.group("value").strip()
    if not is_sensitive(named.group(1) if named else match.group("tag")) or not value or value in _EMPTY_VALUES:
        return match.group(0)
    return f"<{match.group('tag')}{attrs}>{REDACTED}</{match.group('tag')}>"


def _redact_pairs(text):
    parts, last = [], 0
    for match in _PAIR_RE.finditer(text):
        start, end = match.span("value")
        value = match.group("value")
        if start < last or not is_sensitive(match.group("name")) or value in _EMPTY_VALUES \
                or value.lstrip("\\\"'").startswith(REDACTED[:-1]) or _prose(text, match, value, end):
            continue
        if value[0] not in "\"'\\" and match.group("name").lower().endswith("authorization"):
            # an HTTP header: the scheme (Token, ApiKey, Negotiate ...) and its credentials, up to the line's end
            end = len(text) if text.find("\n", start) < 0 else text.find("\n", start)
            end -= text[end - 1 : end] == "\r"
        if value.startswith('\\"'):
            new = f'\\"{REDACTED}\\"'
        elif value[0] in "\"'":
            new = value[0] + REDACTED + value[0]
        else:
            new = REDACTED
        parts += [text[last:start], new]
        last = end
    return "".join(parts) + text[last:] if parts else text


def _sql_alias_sub(match):
    if not is_sensitive(match.group("name").strip('"')) or match.group("value").startswith(REDACTED[:-1]):
        return match.group(0)
    start, end = match.span("value")
    return match.group(0)[: start - match.start(0)] + REDACTED + match.group(0)[end - match.start(0):]


def _sql_insert_sub(match):
    columns = [c.strip().strip('"').strip() for c in match.group("columns").split(",")]
    secret = {i for i, c in enumerate(columns) if is_sensitive(c)}
    if not secret:
        return match.group(0)
    try:
        values = next(csv.reader([match.group("values")], quotechar="'", skipinitialspace=True))
    except (csv.Error, StopIteration):
        return match.group(0)
    if len(values) != len(columns):
        return match.group(0)
    parts = [f"'{REDACTED}'" if i in secret and value.strip() not in ("", "NULL", "null") else
             ("'" + value.replace("'", "''") + "'" if not value.strip().replace(".", "").isdigit()
              and value.strip().upper() not in ("NULL", "TRUE", "FALSE", "DEFAULT") else value)
             for i, value in enumerate(values)]
    start = match.start("values") - match.start(0)
    end = match.end("values") - match.start(0)
    return match.group(0)[:start] + ", ".join(parts) + match.group(0)[end:]


def redact_values(text):
    """``text`` with every secret-shaped value and every ``credential = value`` pair redacted."""
    if not text:
        return text
    low = text.lower()
    for needles, pattern in _VALUE_RULES:
        if needles is None or any(needle in (low if needle.islower() else text) for needle in needles):
            text = pattern.sub(_value_sub, text)
    if mentions_secret(text):
        text = _redact_pairs(text)
        if "</" in text:
            text = _XML_RE.sub(_xml_sub, text)
        if "'" in text:
            text = _SQL_ALIAS_RE.sub(_sql_alias_sub, text)
            text = _SQL_INSERT_RE.sub(_sql_insert_sub, text)
    return text


# -- tables: CSV, psql and markdown --------------------------------------------------------------------

def _delimiter(line):
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def _redact_pipe_table(lines, head, columns):
    out = lines[: head + 1]
    for line in lines[head + 1 :]:
        cells = line.split("|")
        if set(line.strip()) <= set("-+|: ") or len(cells) < 2:  # separator or footer line
            out.append(line)
            continue
        for index in columns:
            if index < len(cells) and cells[index].strip():
                cell = cells[index]
                pad_left = cell[: len(cell) - len(cell.lstrip())]
                cells[index] = f"{pad_left}{REDACTED}" + (" " if cell.endswith(" ") else "")
        out.append("|".join(cells))
    return "\n".join(out)


def _redact_csv(text, head_offset, delimiter, columns):
    newline = "\r\n" if "\r\n" in text else "\n"
    body = text[head_offset:]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    try:
        for row in csv.reader(io.StringIO(body, newline=""), delimiter=delimiter):
            writer.writerow([REDACTED if i in columns and cell.strip() else cell for i, cell in enumerate(row)])
    except csv.Error:  # a malformed or cut tail: what could not be parsed is dropped
        out.write(REDACTED)
    result = out.getvalue()
    if not body.endswith(("\n", "\r")) and result.endswith(newline):
        result = result[: -len(newline)]
    return text[:head_offset] + result


def redact_table(text):
    """A CSV / psql / markdown table whose header names a credential column: that column's cells
    redacted. Any other text is returned unchanged."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    offset = 0
    for head in range(min(TABLE_HEAD_LINES, len(lines) - 1)):
        line = lines[head].rstrip("\r")
        delimiter = _delimiter(line)
        if delimiter:
            if delimiter == "|":
                cells = line.split("|")
            else:
                try:
                    cells = next(csv.reader([line], delimiter=delimiter))
                except (csv.Error, StopIteration):
                    cells = line.split(delimiter)
            columns = {i for i, cell in enumerate(cells) if _header_sensitive(cell)}
            if columns:
                if delimiter == "|":
                    return _redact_pipe_table(lines, head, columns)
                return _redact_csv(text, offset + len(lines[head]) + 1, delimiter, columns)
        elif _SINGLE_HEADER_RE.fullmatch(line.lstrip("\ufeff")) and _header_sensitive(line.lstrip("\ufeff")):
            return _redact_single_column(lines, head)
        offset += len(lines[head]) + 1
    return text


_FOOTER_RE = re.compile(r"\(\d+ rows?\)")
# the header of a one-column table: a column name alone on its line (quoted or padded), no other text
_SINGLE_HEADER_RE = re.compile(r"""[ \t]{0,40}(?P<q>["'`]?)[A-Za-z_][\w .-]{0,62}(?P=q)[ \t]{0,40}\r?""")


def _redact_single_column(lines, head):
    """A one-column CSV or psql table (no delimiter) whose header is a credential name: every cell redacted,
    the separator and ``(N rows)`` footer kept."""
    out = lines[: head + 1]
    for line in lines[head + 1 :]:
        body = line.rstrip("\r")
        if not body.strip() or set(body.strip()) <= set("-+|:= ") or _FOOTER_RE.fullmatch(body.strip()):
            out.append(line)
        else:
            out.append(REDACTED + line[len(body):])
    return "\n".join(out)


# -- structures ----------------------------------------------------------------------------------------

def _redact_string(value, max_string=None, values=True):
    if max_string is not None and len(value) > max_string:
        value = value[:max_string] + "…"
    if "\n" in value and mentions_secret(value):
        value = redact_table(value)
    return redact_values(value) if values else value


def _is_empty(value):
    return value in (None, "", False)


def redact(value, depth=0, max_string=None, values=True, budget=None):
    """Return a copy of ``value`` with secrets redacted at any depth: values under sensitive keys, the
    cells of credential columns (``{"columns": [...], "rows": [...]}``), credential columns of tables
    held in strings, and (``values``) secret-shaped strings. Strings longer than ``max_string`` are cut
    first. ``budget`` (a one-item list: characters of JSON text still wanted) stops the copy where its
    JSON text passes that many characters: what follows would not be kept."""
    if depth > 50:
        return "[TOO DEEP]"
    if isinstance(value, dict):
        # {"key": "smtp_password", "value": "..."} (e.g. a system parameter): the value is a secret too
        pair_secret = any(is_sensitive(value.get(k)) for k in ("key", "name")) and "value" in value
        # {"method": "change_password", "args": ["old", "new"]}: a credential method's arguments are secrets
        method_secret = is_sensitive(value.get("method"))
        columns = value.get("columns")
        secret = ({i for i, c in enumerate(columns) if is_sensitive(c)}
                  if isinstance(columns, list) and isinstance(value.get("rows"), list) else set())
        out = {}
        for k, v in value.items():
            if budget is not None:
                if budget[0] <= 0:
                    break
                budget[0] -= len(str(k)) + 4
            if (is_sensitive(k) or (pair_secret and k == "value") or (method_secret and k in ("args", "kwargs"))) \
                    and not _is_empty(v):
                out[k] = REDACTED
                if budget is not None:
                    budget[0] -= len(REDACTED)
            elif k == "rows" and secret:
                # credential columns redacted before the cells are copied (and counted)
                rows = [[REDACTED if i in secret and not _is_empty(cell) else cell for i, cell in enumerate(row)]
                        if isinstance(row, list) else row for row in itertools.islice(v, _rows_wanted(budget))]
                out[k] = redact(rows, depth + 1, max_string, values, budget)
            else:
                out[k] = redact(v, depth + 1, max_string, values, budget)
        return out
    if isinstance(value, list | tuple):
        out = []
        for v in value:
            if budget is not None:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            out.append(redact(v, depth + 1, max_string, values, budget))
        return out
    if budget is not None:
        budget[0] -= len(value) + 2 if isinstance(value, str) else len(str(value))
    if isinstance(value, str):
        return _redact_string(value, max_string, values)
    return value


def _rows_wanted(budget):
    """Rows that may show in what is kept (a row takes 3 characters at least)."""
    return None if budget is None else max(0, budget[0]) // 3 + 1


def _json_or_none(text):
    try:
        return json.loads(text)
    except ValueError:  # not JSON (a text starting with a bracket): redacted as text below
        return None


def redact_params(arguments, limit):
    """A call's arguments as the audit log keeps them: JSON text cut to ``limit`` characters, secrets
    redacted. The structure is copied only as far as it is kept and the text patterns run once on the kept
    text (not once per string): a batch of 500 records costs what its first ``limit`` characters cost."""
    window = limit + MARGIN
    data = redact(arguments, max_string=window, values=False, budget=[window])
    text = redact_values(json.dumps(data, ensure_ascii=False, default=str)[:window])
    return text if len(text) <= limit else text[:limit] + "…"


def _cut(text, limit):
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def redact_text(text, limit=None):
    """A tool's result or error text as the audit log keeps it: redacted, then cut to ``limit`` characters.

    A JSON text that names a credential in its kept part is parsed and redacted as a structure (columns of
    SQL results, keys at any depth, tables inside strings), copied only as far as it is kept. Only the kept
    part (plus a margin, so that a secret cut by the limit is still recognised whole) goes through the text
    patterns: apart from parsing such a JSON text, the cost does not grow with the size of the result."""
    if not text:
        return text
    if not isinstance(text, str):
        text = str(text)
    window = None if limit is None else limit + MARGIN
    # only what is kept matters: a credential key or column header there (column names come first in a
    # SQL result; tables in strings have their header first), not one farther in a large result
    probe = text if window is None else text[: 2 * window]
    if text[:1] in "{[" and len(text) <= JSON_MAX and mentions_secret(probe):
        data = _json_or_none(text)
        if data is not None:
            # structure only (the text patterns run once below, on the kept part), copied as far as it is kept
            budget = None if window is None else [window]
            text = json.dumps(redact(data, max_string=window, values=False, budget=budget), ensure_ascii=False,
                              default=str, separators=(",", ":"))
    head = text if limit is None else text[: limit + MARGIN]
    if "\n" in head and mentions_secret(head):
        head = redact_table(head)
    return _cut(redact_values(head), limit)
