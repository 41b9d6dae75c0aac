"""Backups of an instance's database (pg_dump), listed and restored by name, in the agent's directory."""

import datetime
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
DEFAULT_MAX_BYTES = 2 * 1024**3


class BackupError(Exception):
    pass


class Backups:
    def __init__(self, directory, pg=None, max_bytes=DEFAULT_MAX_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pg = pg or {}
        self.max_bytes = int(max_bytes)

    def _env(self):
        env = dict(os.environ)
        for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD")):
            if self.pg.get(key):
                env[var] = str(self.pg[key])
        return env

    def _run(self, cmd, timeout=3600):
        proc = subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise BackupError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
        return proc.stdout

    def _instance_dir(self, inst):
        path = self.dir / inst["name"]
        path.mkdir(exist_ok=True)
        return path

    def database_size(self, inst):
        query = f"SELECT pg_database_size({_literal(inst['database'])})"
        out = self._run(["psql", "-X", "-d", "postgres", "-tAc", query])
        return int(out.strip() or 0)

    def backup(self, inst, fmt="custom", filestore=False, label=None):
        if fmt not in ("custom", "plain"):
            raise BackupError("format must be custom or plain")
        size = self.database_size(inst)
        if size > self.max_bytes:
            raise BackupError(f"database {inst['database']} is {size} bytes, over the backup limit of {self.max_bytes}")
        free = shutil.disk_usage(self.dir).free
        if free < size * 1.2:
            raise BackupError(f"not enough free disk space in {self.dir} ({free} bytes free, database {size} bytes)")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        stem = f"{inst['name']}-{stamp}" + (f"-{label}" if label else "")
        path = self._instance_dir(inst) / (stem + (".dump" if fmt == "custom" else ".sql"))
        try:
            self._run(["pg_dump", "--no-owner", "-F", "c" if fmt == "custom" else "p", "-f", str(path),
                       "-d", inst["database"]])
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        result = {"name": path.name, "size": path.stat().st_size, "format": fmt, "database_size": size}
        if filestore and inst.get("filestore") and Path(inst["filestore"]).is_dir():
            archive = path.with_suffix(".filestore.tar.gz")
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(inst["filestore"], arcname="filestore")
            result["filestore"] = archive.name
        return result

    def list(self, inst, max_age_days=None):
        rows = []
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        for path in sorted(self._instance_dir(inst).iterdir()):
            if path.suffix not in (".dump", ".sql"):
                continue
            stat = path.stat()
            if max_age_days is not None and now - stat.st_mtime > float(max_age_days) * 86400:
                continue
            rows.append({"name": path.name, "size": stat.st_size,
                         "created": datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc).isoformat(),
                         "pre_restore": "-pre-restore" in path.name})
        return rows

    def path_of(self, inst, name):
        if not isinstance(name, str) or not NAME.match(name) or name.startswith("."):
            raise BackupError(f"{name!r} is not a backup name")
        path = self._instance_dir(inst) / name
        if not path.is_file() or path.suffix not in (".dump", ".sql"):
            raise BackupError(f"no backup named {name} for {inst['name']}")
        return path

    def restore(self, inst, name, driver):
        """Restore backup ``name`` into the instance's database: a pre-restore snapshot first (no
        snapshot, no restore), the instance stopped, the database recreated and loaded, and the
        instance started again whatever happened."""
        path = self.path_of(inst, name)
        try:
            snapshot = self.backup(inst, "custom", label="pre-restore")
        except BackupError as exc:
            raise BackupError(f"restore aborted: the pre-restore snapshot failed ({exc}); nothing was "
                              "changed") from None
        result = {"backup": name, "snapshot": snapshot["name"], "restored": False}
        driver.stop(inst)
        try:
            self._load(inst, path)
            result["restored"] = True
        except (BackupError, OSError, subprocess.TimeoutExpired) as exc:
            result["error"] = str(exc)
            try:  # the database as it was: the snapshot taken a moment ago
                self._load(inst, self._instance_dir(inst) / snapshot["name"])
                result["rolled_back_to_snapshot"] = True
            except (BackupError, OSError, subprocess.TimeoutExpired) as again:
                result["rollback_error"] = str(again)
        finally:
            driver.start(inst)
            result["restarted"] = True
        return result

    def _load(self, inst, path):
        db = inst["database"]
        self._run(["dropdb", "--if-exists", "--force", db])
        self._run(["createdb", db])
        if path.suffix == ".dump":
            self._run(["pg_restore", "--no-owner", "--exit-on-error", "-d", db, str(path)])
        else:
            self._run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(path)])


def _literal(text):
    return "'" + str(text).replace("'", "''") + "'"
