"""Capture to PostHog with its ``posthog`` Python library: batched and asynchronous.

``capture()`` only puts the event on the library's in-memory queue and returns; a consumer thread of
the library sends batches to ``POST <host>/batch/``. When PostHog is unreachable the consumer retries
in its own thread and, once the queue is full, new events are dropped: a request is never slowed down
or failed by the capture. One client per process and PostHog project (created lazily in the process
that captures, so that a prefork worker never inherits a parent's consumer thread); it holds nothing
another worker needs (the events of a worker are that worker's).

Properties are built by the callers from an allowlist: a user identifier (``<instance>:<uid>``) and
technical facts (route, model.method, durations, exception class). Names, logins, e-mail addresses and
exception messages (which may quote user data) are sent only when the admin enables personal data.
"""

import logging
import os
import re
import threading
from urllib.parse import urlsplit

_logger = logging.getLogger(__name__)

_clients = {}
_lock = threading.Lock()

# batching of the library's consumer: at most FLUSH_AT events per request, at least every FLUSH_INTERVAL s
FLUSH_AT = 100
FLUSH_INTERVAL = 2.0
MAX_QUEUE = 10000  # events kept while PostHog is unreachable; newer ones are dropped beyond
SEND_TIMEOUT = 5  # seconds per batch request of the consumer thread (never a request's thread)
MAX_RETRIES = 2

# PostHog Cloud's ingestion hosts and the app hosts their private API (queries, flags, surveys) is on
_CLOUD_INGESTION = re.compile(r"^(?P<region>us|eu)\.i\.posthog\.com$")
EVENT_NAME = re.compile(r"^\$?[A-Za-z][A-Za-z0-9_ .:-]{0,63}$")


def normalize_host(host):
    """``https://host[:port]`` without a trailing slash, or '' when ``host`` is not an http(s) URL."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return ""
    if "://" not in host:
        host = "https://" + host
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def api_host(host):
    """The host of PostHog's private API for the ingestion ``host``: PostHog Cloud ingests on
    ``us.i.posthog.com`` / ``eu.i.posthog.com`` and answers the API on ``us.posthog.com`` /
    ``eu.posthog.com``; a self-hosted PostHog answers both on one host."""
    host = normalize_host(host)
    parts = urlsplit(host)
    match = _CLOUD_INGESTION.match(parts.hostname or "")
    if match:
        return f"{parts.scheme}://{match['region']}.posthog.com"
    return host


def capture_ready(config):
    """Whether ``config`` (``ocore.mcp.posthog._ocore_posthog_config()``) has capture on and complete."""
    return bool(config.get("capture") and config.get("host") and config.get("project_api_key"))


def distinct_id(config, uid):
    """The one user identifier sent to PostHog: instance and user id (no name, login or e-mail)."""
    return f"{config.get('instance') or 'odoo'}:{uid or 0}"


def _new_client(host, project_api_key):
    from posthog import Posthog  # noqa: PLC0415 - imported where capture is on (an optional dependency at run time)

    return Posthog(
        project_api_key,
        host=host,
        flush_at=FLUSH_AT,
        flush_interval=FLUSH_INTERVAL,
        max_queue_size=MAX_QUEUE,
        timeout=SEND_TIMEOUT,
        max_retries=MAX_RETRIES,
        sync_mode=False,
        disable_geoip=True,
        enable_exception_autocapture=False,
        on_error=_on_error,
    )


def _on_error(error, _batch):
    # the library logs the failure itself; the batch is dropped (never retried from a request)
    _logger.debug("PostHog batch not sent: %s", error)


def client(config):
    """The process's client for the project of ``config`` (None when the library is missing)."""
    key = (os.getpid(), config["host"], config["project_api_key"])
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            # the settings changed (another host or project): the previous client of this process stops
            # in the background (its last flush may wait out a timeout when PostHog is unreachable)
            for stale in [k for k in _clients if k[0] == key[0]]:
                old = _clients.pop(stale)
                if old:
                    threading.Thread(target=old.shutdown, name="posthog-shutdown", daemon=True).start()
            try:
                found = _new_client(config["host"], config["project_api_key"])
            except ImportError:
                _logger.warning("PostHog capture is on but the 'posthog' Python library is not installed")
                found = False
            _clients[key] = found
    return found


def capture(config, event, uid, properties, timestamp=None):
    """Queue one event (never raises, never blocks on the network). Returns whether it was queued."""
    try:
        if not capture_ready(config) or not EVENT_NAME.match(event or ""):
            return False
        ph = client(config)
        if not ph:
            return False
        props = {key: value for key, value in (properties or {}).items() if value is not None}
        props["odoo_instance"] = config.get("instance")
        props["$process_person_profile"] = bool(config.get("personal_data"))
        kwargs = {"distinct_id": distinct_id(config, uid), "properties": props}
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        return bool(ph.capture(event, **kwargs))
    except Exception:  # noqa: BLE001 - monitoring must never fail the request it observes
        _logger.debug("PostHog capture of %r failed", event, exc_info=True)
        return False


def flush(config):
    """Send what this process queued (blocking: for tests and shutdown, never in a request)."""
    ph = _clients.get((os.getpid(), config.get("host"), config.get("project_api_key")))
    if ph:
        ph.flush()


def exception_properties(exc, config, source, endpoint=None):
    """PostHog's error-tracking properties for ``exc``: its class always, its message only with personal
    data enabled (a message may quote a customer's name or a record's values)."""
    kind = type(exc).__name__
    message = str(exc)[:1000] if config.get("personal_data") else ""
    return {
        "$exception_type": kind,
        "$exception_message": message or None,
        "$exception_list": [{"type": kind, "value": message, "mechanism": {"handled": True, "type": "generic"}}],
        "$exception_source": source,
        "odoo_endpoint": endpoint,
    }
