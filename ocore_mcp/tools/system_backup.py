"""Database backup and restore tools of the "system" family (admin only).

Backups are ``pg_dump`` files (custom or plain format), optionally zipped with
the filestore in the layout of Odoo's database manager (``dump.sql`` or
``dump.dump``, ``filestore/``, ``manifest.json``). They are written to the
directory of the ``ocore_mcp.backup_dir`` system parameter (default
``<data_dir>/ocore_backups/<database>``), which must lie outside every addons
path and the filestore: nothing in it is ever served over HTTP.

A restore never touches the live database until the restored copy is known to
be good:

1. the backup file is checked (format, completeness, Odoo series, modules on disk);
2. a pre-restore backup of the live database is written; if it fails, nothing happens;
3. the file is restored into a new staging database (and its filestore beside it);
   a failure (e.g. a corrupt file) drops the staging database, the live one is untouched;
4. after the call's transaction commits (so the request no longer holds a
   connection), a helper thread swaps the databases: it stops new connections to
   the live database, ends the open ones (every worker), renames live -> old and
   staging -> live, moves the filestores, bumps Odoo's registry signaling so every
   worker reloads, loads the new registry, then drops the old database. If the
   new database does not load, the swap is undone.

The result is written to the log and to the MCP audit log of whichever database
is live afterwards.
"""

import datetime
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from contextlib import closing
from typing import Annotated, Literal

import odoo
from odoo import _, models, release
from odoo.exceptions import UserError
from odoo.tools import config
from psycopg2 import sql as pgsql
from pydantic import Field

from ..lib import compat
from ..lib.tooling import mcp_tool
from ..service import audit
from ..lib.errors import Refusal

_logger = logging.getLogger(__name__)

PARAM_DIR = "ocore_mcp.backup_dir"
PARAM_MAX = "ocore_mcp.backup_max_bytes"
DEFAULT_MAX_BYTES = 2 * 1024**3
BACKUP_EXTENSIONS = (".dump", ".sql", ".zip")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
PLAIN_HEAD = b"-- PostgreSQL database dump"
PLAIN_TAIL = b"-- PostgreSQL database dump complete"
SWAP_DELAY_SECONDS = 1.0
RESTORE_LOCK = 0x6F6372  # advisory lock namespace of restores ("ocr")
ADMIN = {"admin_only": True, "model_args": ()}


def _utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d_%H%M%S")


def _pg_tool(name):
    from odoo.tools.misc import find_pg_tool

    return find_pg_tool(name)


def _pg_env():
    from odoo.tools.misc import exec_pg_environ

    return exec_pg_environ()


def _dir_size(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed while walking: not part of the size
                continue
    return total


def _inside(path, parent):
    path, parent = os.path.realpath(path), os.path.realpath(parent)
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def _pg_name(base, suffix):
    """A database name ``<base><suffix>`` within PostgreSQL's 63 bytes."""
    return base[: 63 - len(suffix)] + suffix


def _postgres_cursor():
    cr = odoo.sql_db.db_connect("postgres").cursor()
    cr._cnx.autocommit = True
    return closing(cr)


def _terminate(cr, dbname):
    """End the other client connections to ``dbname`` (PostgreSQL stops its autovacuum workers itself
    on DROP/RENAME; a non-superuser may not signal them)."""
    cr.execute(
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
              AND usename = current_user""",
        (dbname,),
    )


def _drop_database(dbname):
    odoo.sql_db.close_db(dbname)
    with _postgres_cursor() as cr:
        _terminate(cr, dbname)
        cr.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(pgsql.Identifier(dbname)))
    shutil.rmtree(config.filestore(dbname), ignore_errors=True)


def _drop_quietly(dbname):
    """Drop a staging database on a failure path without hiding the failure being reported."""
    try:
        _drop_database(dbname)
    except Exception:
        _logger.exception("could not drop the staging database %s; drop it by hand", dbname)


def _db_exists(dbname):
    with _postgres_cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        return bool(cr.fetchone())


class SystemBackupTools(models.AbstractModel):
    _inherit = "ocore.mcp.tools.system"

    # -- settings ------------------------------------------------------------

    def _ocore_backup_dir(self, create=True):
        """The backup directory (checked to be outside addons paths, the filestore and sessions)."""
        icp = self.env["ir.config_parameter"].sudo()
        dbname = self.env.cr.dbname
        path = icp.get_param(PARAM_DIR) or os.path.join(config["data_dir"], "ocore_backups", dbname)
        if not os.path.isabs(path):
            raise Refusal("not_configured", f"the system parameter {PARAM_DIR} must be an absolute path")
        addons = compat.config_list("addons_path")
        addons += list(getattr(odoo.addons, "__path__", []))
        data = [os.path.join(config["data_dir"], "filestore"), os.path.join(config["data_dir"], "sessions")]
        for root in addons + data:
            clash = _inside(root, path) or (_inside(path, root) and root in data)
            if not clash and _inside(path, root):  # inside a module of an addons path (its static/ is served)
                first = os.path.relpath(os.path.realpath(path), os.path.realpath(root)).split(os.sep)[0]
                clash = os.path.isfile(os.path.join(root, first, "__manifest__.py"))
            if clash:
                raise Refusal(
                    "not_configured",
                    f"the backup directory {path} overlaps {root} (an addon, an addons path, the filestore or "
                    f"the sessions): choose another one in the system parameter {PARAM_DIR}",
                )
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        return os.path.realpath(path)

    def _ocore_backup_max_bytes(self):
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_MAX)
        try:
            return int(value) if value else DEFAULT_MAX_BYTES
        except ValueError:
            raise Refusal("not_configured", f"the system parameter {PARAM_MAX} must be a number of bytes") from None

    def _ocore_remaining(self, default=120):
        call = self._call()
        if call is not None and call.deadline is not None:
            return max(1.0, call.deadline.remaining() - 1.0)
        return default

    def _ocore_pg_run(self, cmd, timeout, what):
        """Run a PostgreSQL client tool; raise UserError with its last output lines when it fails."""
        try:
            proc = subprocess.run(cmd, env=_pg_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=max(1, timeout), check=False)
        except subprocess.TimeoutExpired:
            raise UserError(_(
                "%(what)s did not finish within %(timeout)s s (raise timeout_seconds, max 120)",
                what=what, timeout=int(timeout),
            )) from None
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.decode(errors="replace").strip().splitlines()[-6:])
            raise UserError(_(
                "%(what)s failed (exit code %(code)s): %(output)s",
                what=what, code=proc.returncode, output=tail or _("no output"),
            ))
        return proc

    # -- dumping -------------------------------------------------------------------

    def _ocore_manifest(self):
        cr = self.env.cr
        cr.execute("SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'")
        return {
            "odoo_dump": "1",
            "db_name": cr.dbname,
            "version": release.version,
            "version_info": list(release.version_info),
            "major_version": release.major_version,
            "pg_version": cr.connection.server_version,
            "modules": dict(cr.fetchall()),
        }

    def _ocore_write_backup(self, directory, name, fmt, with_filestore):
        """pg_dump the current database into ``directory/name`` (a zip with the filestore when asked)."""
        dbname = self.env.cr.dbname
        final = os.path.join(directory, name)
        partial = final + ".partial"
        flag = "--format=c" if fmt == "custom" else "--format=p"
        try:
            if not with_filestore:
                self._ocore_pg_run([_pg_tool("pg_dump"), "--no-owner", flag, f"--file={partial}", dbname],
                                   self._ocore_remaining(), "pg_dump")
            else:
                with tempfile.TemporaryDirectory(dir=directory) as tmp:
                    inner = os.path.join(tmp, "dump.dump" if fmt == "custom" else "dump.sql")
                    self._ocore_pg_run([_pg_tool("pg_dump"), "--no-owner", flag, f"--file={inner}", dbname],
                                       self._ocore_remaining(), "pg_dump")
                    filestore = config.filestore(dbname)
                    with zipfile.ZipFile(partial, "w", allowZip64=True) as zf:
                        zf.writestr("manifest.json", json.dumps(self._ocore_manifest(), indent=4))
                        zf.write(inner, os.path.basename(inner),
                                 compress_type=zipfile.ZIP_DEFLATED if fmt == "plain" else zipfile.ZIP_STORED)
                        for dirpath, _dirs, files in os.walk(filestore):
                            for fname in files:
                                full = os.path.join(dirpath, fname)
                                zf.write(full, os.path.join("filestore", os.path.relpath(full, filestore)))
            os.chmod(partial, 0o600)
            os.replace(partial, final)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return final

    def _ocore_backup_row(self, path):
        stat = os.stat(path)
        name = os.path.basename(path)
        modified = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc)
        return {
            "name": name,
            "size_bytes": stat.st_size,
            "created": modified.strftime("%Y-%m-%d %H:%M:%S"),
            "age_days": round((time.time() - stat.st_mtime) / 86400, 2),
            "format": {".dump": "custom", ".sql": "plain"}.get(os.path.splitext(name)[1], "zip"),
            "filestore": name.endswith(".zip"),
            "pre_restore": "_pre-restore" in name,
        }

    def _ocore_backup(self, fmt="custom", with_filestore=False, label=None, dry_run=False):
        directory = self._ocore_backup_dir(create=not dry_run)
        dbname = self.env.cr.dbname
        self.env.cr.execute("SELECT pg_database_size(current_database())")
        db_size = self.env.cr.fetchone()[0]
        fs_size = _dir_size(config.filestore(dbname)) if with_filestore else 0
        limit = self._ocore_backup_max_bytes()
        if db_size + fs_size > limit:
            raise Refusal(
                "limit_exceeded",
                f"the database is {db_size} bytes" + (f" and its filestore {fs_size} bytes" if with_filestore else "")
                + f", over the backup limit of {limit} bytes (system parameter {PARAM_MAX}); nothing was written",
            )
        if not dry_run:
            free = shutil.disk_usage(directory).free
            if free < db_size + fs_size:
                raise Refusal("limit_exceeded", f"only {free} bytes free in {directory}; the backup needs up to "
                              f"{db_size + fs_size} bytes; nothing was written")
        suffix = f"_{label}" if label else ""
        ext = ".zip" if with_filestore else (".dump" if fmt == "custom" else ".sql")
        name = f"{dbname}_{_utc_stamp()}{suffix}{ext}"
        if os.path.exists(os.path.join(directory, name)):
            name = f"{dbname}_{_utc_stamp()}_{secrets.token_hex(2)}{suffix}{ext}"
        info = {"database": dbname, "database_size_bytes": db_size, "filestore_size_bytes": fs_size,
                "limit_bytes": limit, "directory": directory, "format": fmt, "filestore": with_filestore}
        if dry_run:
            return {**info, "would_write": name, "size_check": "passed"}
        started = time.monotonic()
        path = self._ocore_write_backup(directory, name, fmt, with_filestore)
        _logger.info("MCP backup of %s written to %s", dbname, path)
        return {**info, "backup": self._ocore_backup_row(path), "path": path,
                "duration_ms": int((time.monotonic() - started) * 1000)}

    # -- tools -----------------------------------------------------------------------

    @mcp_tool("system", kind="write", min_timeout=120, **ADMIN, title="Back up database")
    def _tool_backup_database(self, format: Literal["custom", "plain"] = "custom",
                              include_filestore: bool = False,
                              label: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = None) -> dict:
        """pg_dump the database to the backup directory (max 2 GB).

        Args:
            label: Added to the file name.
        """
        call = self._call()
        return self._ocore_backup(format, include_filestore, label, dry_run=bool(call and call.dry_run))

    @mcp_tool("system", **ADMIN, title="List backups")
    def _tool_list_backups(self, max_age_days: Annotated[float, Field(gt=0)] | None = None) -> dict:
        """Backup files, newest first."""
        directory = self._ocore_backup_dir(create=False)
        rows = []
        if os.path.isdir(directory):
            for entry in os.scandir(directory):
                if entry.is_file(follow_symlinks=False) and entry.name.endswith(BACKUP_EXTENSIONS):
                    row = self._ocore_backup_row(entry.path)
                    if max_age_days is None or row["age_days"] <= max_age_days:
                        rows.append(row)
        rows.sort(key=lambda r: (r["created"], r["name"]), reverse=True)
        return {"directory": directory, "count": len(rows), "total_bytes": sum(r["size_bytes"] for r in rows),
                "backups": rows}

    # -- restore -----------------------------------------------------------------------

    def _ocore_backup_path(self, name):
        if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name or not name.endswith(BACKUP_EXTENSIONS):
            raise Refusal("invalid_input", f"backup: {name!r} is not a backup file name (see list_backups)")
        directory = self._ocore_backup_dir(create=False)
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or os.path.islink(path) or not _inside(path, directory):
            raise Refusal("not_found", f"backup: no backup file {name!r} in {directory} (see list_backups)")
        return path

    def _ocore_inspect_backup(self, path, workdir):
        """Check a backup file before anything is done; return (kind, dump path, has filestore).

        ``kind`` is "custom" or "plain". A zip is unpacked into ``workdir``. Raises UserError
        (nothing changed) when the file is not a complete pg_dump of this Odoo series.
        """
        name = os.path.basename(path)
        has_filestore = False
        dump = path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad:
                    raise UserError(_(
                        "the backup %(name)s is corrupt (bad CRC for %(member)s); nothing was changed",
                        name=name, member=bad,
                    ))
                names = zf.namelist()
                inner = next((n for n in ("dump.dump", "dump.sql") if n in names), None)
                if not inner:
                    raise UserError(_("the backup %s holds no dump.sql or dump.dump; nothing was changed", name))
                members = [inner] + [n for n in names if n.startswith("filestore/") and not n.endswith("/")]
                zf.extractall(workdir, members)
                dump = os.path.join(workdir, inner)
                has_filestore = len(members) > 1 or any(n.startswith("filestore/") for n in names)
        with open(dump, "rb") as fh:
            head = fh.read(1024)
        if head.startswith(b"PGDMP"):
            # the table of contents must list Odoo's tables, and the whole archive must read back
            # (a truncated file keeps its table of contents)
            for args in (["--list"], [f"--file={os.devnull}"]):
                proc = subprocess.run([_pg_tool("pg_restore"), *args, dump], env=_pg_env(), capture_output=True,
                                      timeout=max(1, self._ocore_remaining()), check=False)
                listed = args[0] != "--list" or b"TABLE DATA public ir_module_module" in proc.stdout
                if proc.returncode != 0 or not listed:
                    reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no Odoo tables"]
                    raise UserError(_(
                        "the backup %(name)s is not a readable pg_dump archive of an Odoo database (%(reason)s); "
                        "nothing was changed", name=name, reason=reason[0],
                    ))
            kind = "custom"
        elif head.startswith(b"--") and PLAIN_HEAD in head:
            with open(dump, "rb") as fh:
                fh.seek(max(0, os.path.getsize(dump) - 4096))
                tail = fh.read()
            if PLAIN_TAIL not in tail:
                raise UserError(
                    _("the backup %s is an incomplete SQL dump (its end is missing); nothing was changed", name)
                )
            kind = "plain"
        else:
            raise UserError(_("the backup %s is neither a pg_dump archive nor a SQL dump; nothing was changed", name))
        return kind, dump, has_filestore

    def _ocore_restore_into(self, staging, kind, dump):
        """Create ``staging`` like the live database and restore the dump into it."""
        cr = self.env.cr
        cr.execute("""SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
                       WHERE datname = current_database()""")
        encoding, collate, ctype = cr.fetchone()
        with _postgres_cursor() as pcr:
            pcr.execute(
                pgsql.SQL("CREATE DATABASE {} ENCODING %s LC_COLLATE %s LC_CTYPE %s TEMPLATE template0").format(
                    pgsql.Identifier(staging)
                ),
                (encoding, collate, ctype),
            )
        if kind == "custom":
            cmd = [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={staging}", dump]
        else:
            cmd = [_pg_tool("psql"), "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                   f"--dbname={staging}", f"--file={dump}"]
        self._ocore_pg_run(cmd, self._ocore_remaining(), "pg_restore" if kind == "custom" else "psql")

    def _ocore_check_restored(self, staging):
        """The restored database must be an Odoo database of this series whose modules are all on disk."""
        from odoo.modules.module import get_modules

        with closing(odoo.sql_db.db_connect(staging).cursor()) as scr:
            scr.execute("SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'")
            installed = dict(scr.fetchall())
        odoo.sql_db.close_db(staging)
        base = installed.get("base")
        if not base:
            raise UserError(_("the restored database has no installed 'base' module: not an Odoo database"))
        if not str(base).startswith(release.major_version + "."):
            raise UserError(_(
                "the backup is of Odoo %(backup)s, this server runs Odoo %(server)s; it cannot be restored here",
                backup=base.rsplit(".", 3)[0] if base else "?", server=release.major_version,
            ))
        missing = sorted(set(installed) - set(get_modules()))
        if missing:
            raise UserError(
                _("modules installed in the backup are missing on this server: %s", ", ".join(missing[:20]))
            )
        return installed

    def _ocore_single_restore(self, dbname):
        """One restore of a database at a time: a lock held until the call's transaction ends, and no
        staging copy of a previous restore still waiting for its switch."""
        cr = self.env.cr
        cr.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(current_database()))", (RESTORE_LOCK,))
        locked = cr.fetchone()[0]
        with _postgres_cursor() as pcr:
            prefix = _pg_name(dbname, "_restore_000000")[:-6]
            pcr.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                        (prefix.replace("_", "\\_") + "%",))
            pending = [row[0] for row in pcr.fetchall()]
        if not locked or pending:
            raise Refusal("cooldown", "another restore of this database is in progress"
                          + (f" (staging database {pending[0]})" if pending else "") + "; try again in a minute")

    @mcp_tool("system", kind="destructive", min_timeout=120, **ADMIN, title="Restore database")
    def _tool_restore_database(self, backup: Annotated[str, Field(min_length=1, max_length=240)]) -> dict:
        """Replace the database by a backup (a backup first; swapped in only if the restore succeeds).

        Args:
            backup: A list_backups name.
        """
        call = self._call()
        dbname = self.env.cr.dbname
        path = self._ocore_backup_path(backup)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as workdir:
            kind, dump, has_filestore = self._ocore_inspect_backup(path, workdir)
            plan = {"database": dbname, "backup": backup, "format": kind, "filestore_in_backup": has_filestore}
            if call is not None and call.dry_run:
                return {**plan, "checked": True, "note": "The file is a complete dump; nothing was changed."}
            self._ocore_single_restore(dbname)
            try:
                pre = self._ocore_backup("custom", has_filestore, "pre-restore")
            except (UserError, Refusal) as exc:
                raise UserError(_("the pre-restore backup failed, so nothing was restored: %s", exc)) from None
            staging = _pg_name(dbname, f"_restore_{secrets.token_hex(3)}")
            try:
                self._ocore_restore_into(staging, kind, dump)
                self._ocore_check_restored(staging)
                if has_filestore:
                    source = os.path.join(workdir, "filestore")
                    if os.path.isdir(source):
                        shutil.move(source, config.filestore(staging))
            except BaseException as exc:
                _drop_quietly(staging)
                if isinstance(exc, UserError):
                    raise UserError(_(
                        "%(error)s. The restore failed; the database was not changed (pre-restore backup: %(backup)s)",
                        error=exc, backup=pre["backup"]["name"],
                    )) from None
                raise
        job = {
            "dbname": dbname,
            "staging": staging,
            "swap_filestore": has_filestore,
            "backup": backup,
            "pre_restore": pre["backup"]["name"],
            "key_id": self._ocore_key_id(),
            "user_id": self.env.uid,
            "ip": call.connection.ip if call else None,
        }
        if compat.in_odoo_test():
            return {**plan, "status": "staged", "staging_database": staging, "pre_restore_backup": job["pre_restore"]}
        cr = self.env.cr
        cr.postcommit.add(lambda: threading.Thread(target=_swap_database, args=(job,), name="ocore-mcp-restore",
                                                   daemon=False).start())
        cr.postrollback.add(lambda: _drop_quietly(staging))
        return {
            **plan,
            "status": "restore ready: the database is replaced right after this response",
            "pre_restore_backup": job["pre_restore"],
            "note": "Reconnect in a few seconds. Sessions, keys and data created after the backup are gone "
                    "(the pre-restore backup keeps them); the outcome is in the server log and the audit log.",
        }


# -- the swap (a helper thread, after the call's transaction committed) ------------------


def _sequences(dbname):
    with closing(odoo.sql_db.db_connect(dbname).cursor()) as cr:
        cr.execute("SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE %s", ("base\\_%signaling%",))
        names = [row[0] for row in cr.fetchall()]
        values = {}
        for name in names:
            cr.execute(pgsql.SQL("SELECT last_value FROM {}").format(pgsql.Identifier(name)))
            values[name] = cr.fetchone()[0]
    return values


def _bump_sequences(dbname, previous):
    """Make every signaling sequence of the new database larger than any value a worker has seen."""
    with closing(odoo.sql_db.db_connect(dbname).cursor()) as cr:
        for name, value in _sequences(dbname).items():
            cr.execute("SELECT setval(%s, %s)", (name, max(value, previous.get(name, 0)) + 1))
        cr.commit()  # pylint: disable=invalid-commit  # own cursor on the restored database


def _set_connections(cr, dbname, allow):
    cr.execute(pgsql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
        pgsql.Identifier(dbname), pgsql.SQL("true" if allow else "false")
    ))


def _rename(cr, old, new, attempts=50):
    for attempt in range(attempts):
        _terminate(cr, old)
        try:
            cr.execute(pgsql.SQL("ALTER DATABASE {} RENAME TO {}").format(pgsql.Identifier(old), pgsql.Identifier(new)))
            return
        except Exception:  # ObjectInUse: a backend was still closing
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


def _audit_outcome(dbname, job, success, message):
    try:
        with closing(odoo.sql_db.db_connect(dbname).cursor()) as cr:
            cr.execute("SELECT id FROM ocore_mcp_key WHERE id = %s", (job["key_id"] or 0,))
            key_id = job["key_id"] if cr.fetchone() else None
            cr.execute("SELECT id FROM res_users WHERE id = %s", (job["user_id"],))
            user_id = job["user_id"] if cr.fetchone() else None
            audit.insert(cr, {
                "event": "call", "tool": "restore_database", "tool_name": "restore_database (swap)",
                "category": "system", "status": "success" if success else "error", "success": success,
                "key_id": key_id, "user_id": user_id, "ip_address": job["ip"], "transport": "internal",
                "params": {"backup": job["backup"], "pre_restore_backup": job["pre_restore"]},
                "result_summary" if success else "error_message": message,
            })
            cr.commit()  # pylint: disable=invalid-commit  # own cursor: the restore outcome is logged
    except Exception:
        _logger.warning("could not write the restore outcome to the audit log of %s", dbname, exc_info=True)


def _swap_database(job):
    """Replace ``job["dbname"]`` by ``job["staging"]`` (see the module docstring)."""
    from odoo.modules.registry import Registry

    live, staging = job["dbname"], job["staging"]
    old = _pg_name(live, f"_replaced_{secrets.token_hex(3)}")
    threading.current_thread().dbname = live
    time.sleep(SWAP_DELAY_SECONDS)  # let the response of the restore call leave
    _logger.warning("MCP restore: replacing database %s by %s (backup %s)", live, staging, job["backup"])
    renamed = swapped = fs_moved = False
    live_fs, staging_fs, old_fs = (config.filestore(n) for n in (live, staging, old))
    try:
        Registry.delete(live)
        odoo.sql_db.close_db(live)
        odoo.sql_db.close_db(staging)
        with _postgres_cursor() as cr:
            _set_connections(cr, live, False)
            try:
                _rename(cr, live, old)
                renamed = True
                _rename(cr, staging, live)
                swapped = True
            finally:
                if not swapped:
                    if renamed:
                        _rename(cr, old, live)
                    _set_connections(cr, live, True)
            if job["swap_filestore"] and os.path.isdir(staging_fs):
                if os.path.isdir(live_fs):
                    shutil.move(live_fs, old_fs)
                shutil.move(staging_fs, live_fs)
                fs_moved = True
            _set_connections(cr, old, True)
        previous = _sequences(old)
        odoo.sql_db.close_db(old)
        _bump_sequences(live, previous)
        try:
            Registry.new(live)
        except Exception:
            _logger.exception("MCP restore: the restored database %s does not load; putting the old one back", live)
            Registry.delete(live)
            odoo.sql_db.close_db(live)
            with _postgres_cursor() as cr:
                _set_connections(cr, live, False)
                _rename(cr, live, staging)
                _rename(cr, old, live)
                _set_connections(cr, live, True)
            if fs_moved:
                shutil.move(live_fs, staging_fs)
                if os.path.isdir(old_fs):
                    shutil.move(old_fs, live_fs)
            _bump_sequences(live, _sequences(staging))
            _drop_quietly(staging)
            Registry.delete(live)
            _audit_outcome(live, job, False, f"the restored database did not load; {live} was put back as it was")
            return
        _drop_quietly(old)
        message = (f"database {live} restored from {job['backup']} (pre-restore backup {job['pre_restore']}); "
                   "every worker reloads its registry")
        _logger.warning("MCP restore: %s", message)
        _audit_outcome(live, job, True, message)
    except Exception as exc:
        _logger.exception("MCP restore of %s failed", live)
        if not swapped:
            _drop_quietly(staging)
            Registry.delete(live)
            _audit_outcome(live, job, False, f"the restore failed before the switch ({exc}); the database was "
                                             "not changed")
