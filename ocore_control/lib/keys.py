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


def signing_key(env, label):
    """The Ed25519 private key (not stored) and its public key in PEM."""
    private = Ed25519PrivateKey.from_private_bytes(derive(env, label))
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public
