"""Redaction of secrets before anything is written to the audit log."""

import re

REDACTED = "[REDACTED]"
SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|credential|api[_-]?key|apikey|private[_-]?key|authorization|cookie|session[_-]?key",
    re.I,
)


def is_sensitive(key):
    return isinstance(key, str) and bool(SENSITIVE_KEY.search(key))


def redact(value, depth=0):
    """Return a copy of ``value`` with sensitive keys replaced at any depth."""
    if depth > 50:
        return "[TOO DEEP]"
    if isinstance(value, dict):
        # {"key": "smtp_password", "value": "..."} (e.g. a system parameter): the value is a secret too
        pair_secret = any(is_sensitive(value.get(k)) for k in ("key", "name")) and "value" in value
        return {
            k: (REDACTED if (is_sensitive(k) or (pair_secret and k == "value")) and v not in (None, "", False)
                else redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    return value
