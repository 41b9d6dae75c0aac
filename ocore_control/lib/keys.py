"""Secrets of the control plane, derived from one master key that is not stored in the database.

The master key comes from the Odoo configuration file (``ocore_control_master_key``) or the
environment (``OCORE_CONTROL_MASTER_KEY``); without either, from the database secret (documented as
the weaker choice). Each agent secret and each instance signing key is derived from it with HMAC-SHA256
and a label naming its purpose, owner and generation: the database keeps only the generation and a
fingerprint, so a copy of the database alone signs nothing; rotating is a new generation.
"""

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def master_key(env):
    from odoo.tools import config

    value = config.get("ocore_control_master_key") or os.environ.get("OCORE_CONTROL_MASTER_KEY")
    if not value:
        value = env["ir.config_parameter"].sudo().get_param("database.secret")
    return value.encode()


def derive(env, label):
    """32 bytes for ``label`` (e.g. 'agent/<uuid>/<id>/<generation>')."""
    uuid = env["ir.config_parameter"].sudo().get_param("database.uuid", "")
    return hmac.new(master_key(env), f"ocore-control/{uuid}/{label}".encode(), hashlib.sha256).digest()


def fingerprint(secret):
    data = secret if isinstance(secret, bytes) else secret.encode()
    return hashlib.sha256(data).hexdigest()[:16]


_PRIVATE = {}  # (HMAC of the derivation input, label) -> Ed25519PrivateKey: derived once per process
_PRIVATE_MAX = 1024


def private_key(env, label):
    """The Ed25519 private key for ``label``, derived once per process (a cache of a pure function of
    the master key: nothing another worker needs, nothing stored)."""
    seed = derive(env, label)
    cache_key = hashlib.sha256(seed).digest()
    key = _PRIVATE.get(cache_key)
    if key is None:
        if len(_PRIVATE) >= _PRIVATE_MAX:
            _PRIVATE.clear()
        key = _PRIVATE[cache_key] = Ed25519PrivateKey.from_private_bytes(seed)
    return key


def signing_key(env, label):
    """The Ed25519 private key (not stored) and its public key in PEM."""
    private = private_key(env, label)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public
