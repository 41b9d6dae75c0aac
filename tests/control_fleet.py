"""A control plane in front of real instances, for the control plane's end-to-end tests.

Every part is real: one Odoo server per database (the control plane: ocore_mcp + ocore_control; each
instance: ocore_mcp), enrolled the way an admin does it (a one-time token generated on the instance,
entered in the control plane's enrolment form).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness import Admin, OdooServer, create_database, drop_database, new_db_name, pg_query

CONTROL_ADDONS = ("ocore_mcp", "ocore_control")
OAUTH_ADDON = "ocore_mcp_oauth"  # beside ocore_control on the control plane (its consent picks the instances)
INSTANCE_ADDONS = ("ocore_mcp",)
MEMBER_LOGIN = "alice@fleet.example"


@dataclass
class Instance:
    server: OdooServer
    admin: Admin
    record_id: int  # ocore.control.instance on the control plane
    member_uid: int  # the member's own user on this instance

    @property
    def slug(self):
        return self.server.slug


@dataclass
class Fleet:
    cp: OdooServer
    cp_admin: Admin
    org_id: int
    member_uid: int  # the member on the control plane
    instances: list[Instance] = field(default_factory=list)

    def key(self, **kw):
        """An organization key of the member (scopes as Admin.create_key)."""
        kw.setdefault("name", f"fleet key {secrets.token_hex(3)}")
        return self.cp_admin.create_key(user_id=self.member_uid, organization_id=self.org_id, **kw)


def enrol(fleet: Fleet, server: OdooServer, **values) -> Instance:
    """What the two admins do: a token on the instance, the enrolment form on the control plane."""
    admin = Admin(server.url, server.db)
    admin.set_param("ocore_mcp.rate_limit", 100000)
    member_uid = admin.create_user(MEMBER_LOGIN, name="Alice (instance)")
    link_id = admin.create("ocore.mcp.control.link", {"name": "fleet control plane"})
    token = admin.call("ocore.mcp.control.link", "action_generate_token", [link_id])
    cp = fleet.cp_admin
    record_id = cp.create("ocore.control.instance", {
        "name": server.db, "slug": server.slug, "organization_id": fleet.org_id, "environment": "staging",
        **values})
    wizard = cp.create("ocore.control.enrol", {"instance_id": record_id, "url": server.url, "token": token})
    cp.call("ocore.control.enrol", "action_enrol", [wizard])
    instance = Instance(server, admin, record_id, member_uid)
    fleet.instances.append(instance)
    return instance


def copy_database(setup, source, target):
    pg_query(setup, "postgres", f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    data_dir = setup.data_dir()
    if data_dir and (data_dir / "filestore" / source).is_dir():
        shutil.copytree(data_dir / "filestore" / source, data_dir / "filestore" / target)
    # its own identity (the copy would otherwise share the source's uuid and secret)
    pg_query(setup, target, "UPDATE ir_config_parameter SET value = gen_random_uuid()::text "
             "WHERE key IN ('database.uuid', 'database.secret')")


@contextlib.contextmanager
def control_fleet(setup, count=2, keep=False, oauth=False, cp_mode="threaded"):
    cp_db = new_db_name()
    dbs = [new_db_name() for _ in range(count)]
    servers = []
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(create_database, setup, cp_db, CONTROL_ADDONS + ((OAUTH_ADDON,) if oauth else ())),
                    pool.submit(create_database, setup, dbs[0], INSTANCE_ADDONS)]
            for job in jobs:
                job.result()
        for db in dbs[1:]:  # the other instances: copies of the first one (a new slug each: the db name)
            copy_database(setup, dbs[0], db)
        cp = OdooServer(setup, cp_db, mode=cp_mode)  # (prefork: long-lived GETs to cp.gevent_port)
        servers.append(cp)
        cp.start()
        for db in dbs:
            servers.append(OdooServer(setup, db).start())
        cp_admin = Admin(cp.url, cp_db)
        cp_admin.set_param("ocore_mcp.rate_limit", 100000)
        cp_admin.set_param("ocore_control.retry_seconds", 1)
        # the control plane's public URL: the instances send their notices there, OAuth's issuer
        cp_admin.set_param("web.base.url", cp.url)
        member = cp_admin.create_user(MEMBER_LOGIN, name="Alice")
        org_id = cp_admin.create("ocore.control.organization", {
            "name": "Fleet agency", "member_ids": [(0, 0, {"user_id": member, "role": "owner"})]})
        fleet = Fleet(cp, cp_admin, org_id, member)
        for server in servers[1:]:
            enrol(fleet, server)
        yield fleet
    finally:
        for server in servers:
            server.stop()
        for db in [cp_db, *dbs]:
            if keep:
                print(f"\nkept database {db}")
            else:
                with contextlib.suppress(Exception):
                    drop_database(setup, db)
