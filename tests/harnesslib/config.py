"""Odoo set-up of the end-to-end suite: where the repository, Odoo (its tree, series, launcher, virtualenv,
configuration) and PostgreSQL are, from the environment that ``setup/test`` exports."""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO = Path(os.environ.get("OCORE_REPO") or TESTS_DIR.parent).resolve()
TEST_ADDONS_DIR = TESTS_DIR / "addons"
ARTIFACTS = TESTS_DIR / "artifacts"

MAIN_ADDON = "ocore_mcp"
TEST_ADDON = "ocore_mcp_test_extension"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "admin"  # the password of "admin" in a fresh database (demo data or not)
DB_PREFIX = "ocore_e2e_"


SLUG_MAX = 28  # ocore_mcp's res_config_settings.SLUG_MAX


def slug_of(dbname: str) -> str:
    """The default instance slug (ocore_mcp's default_slug): the database name lower-cased, non-alphanumerics
    -> '_', never "ocore"; a name over SLUG_MAX characters is cut and ends with a 6-digit hash of the whole."""
    slug = re.sub(r"[^a-z0-9]+", "_", dbname.lower()).strip("_") or "odoo"
    if slug == "ocore":
        return "ocore_db"
    if len(slug) <= SLUG_MAX:
        return slug
    return f"{slug[:SLUG_MAX - 7].rstrip('_')}_{hashlib.sha256(slug.encode()).hexdigest()[:6]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class HarnessError(RuntimeError):
    pass


def odoo_tree(odoo_bin: Path | None = None) -> Path:
    """The Odoo source tree under test: OCORE_ODOO_PATH, else the tree of the launcher (odoo-bin at its
    top, or setup/odoo)."""
    if os.environ.get("OCORE_ODOO_PATH"):
        return Path(os.environ["OCORE_ODOO_PATH"])
    launcher = Path(odoo_bin or os.environ.get("OCORE_ODOO_BIN") or "/opt/odoo/18.0/odoo-bin").resolve()
    return launcher.parent.parent if launcher.parent.name == "setup" else launcher.parent


def odoo_series(odoo_bin: Path | None = None) -> str:
    """The series of the Odoo tree under test, e.g. "18.0" (read from its odoo/release.py). Module
    versions are this series followed by the manifest's version ("1.0.0" -> "18.0.1.0.0")."""
    release = odoo_tree(odoo_bin) / "odoo" / "release.py"
    try:
        match = re.search(r"^version_info = \((\d+), *(\d+),", release.read_text(), re.MULTILINE)
    except OSError:
        match = None
    if not match:
        raise HarnessError(f"cannot read the Odoo series from {release}: set OCORE_ODOO_PATH to the Odoo tree")
    return f"{match[1]}.{match[2]}"


# -- configuration -------------------------------------------------------------------------


@dataclass
class OdooSetup:
    """Where Odoo is and how to reach PostgreSQL."""

    odoo_bin: Path
    python: Path
    conf: Path
    repo: Path = REPO
    options: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> OdooSetup:
        env = os.environ
        setup = cls(
            odoo_bin=Path(env.get("OCORE_ODOO_BIN") or "/opt/odoo/18.0/odoo-bin"),
            python=Path(env.get("OCORE_ODOO_PYTHON") or REPO / ".venv" / "bin" / "python"),
            conf=Path(env.get("OCORE_ODOO_CONF") or REPO / ".local" / "odoo.conf"),
        )
        missing = [f"{name}={path}" for name, path in
                   (("OCORE_ODOO_BIN", setup.odoo_bin), ("OCORE_ODOO_PYTHON", setup.python),
                    ("OCORE_ODOO_CONF", setup.conf)) if not path.exists()]
        if missing:
            raise HarnessError(
                "the end-to-end suite needs Odoo; not found: " + ", ".join(missing)
                + ". Run it through setup/test (which prepares and exports them) or set these variables."
            )
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(setup.conf)
        setup.options = dict(parser["options"]) if parser.has_section("options") else {}
        return setup

    def conf_value(self, name):
        value = self.options.get(name)
        return None if value in (None, "", "False", "None") else value

    def odoo_addons_dirs(self) -> list[str]:
        """The addons directories of the configuration, without this repository."""
        dirs = []
        for item in (self.conf_value("addons_path") or "").split(","):
            item = item.strip()
            if not item:
                continue
            path = Path(item).resolve()
            if path in (self.repo, TEST_ADDONS_DIR) or not path.is_dir():
                continue
            dirs.append(str(path))
        if not dirs:  # a conf without Odoo's own addons: take them from the source tree
            root = self.odoo_bin.resolve().parent
            dirs = [str(p) for p in (root / "addons", root / "odoo" / "addons") if p.is_dir()]
        return dirs

    def addons_path(self) -> str:
        return ",".join([str(self.repo), str(TEST_ADDONS_DIR), *self.odoo_addons_dirs()])

    def process_env(self) -> dict:
        env = dict(os.environ)
        # Odoo re-executes basename(sys.executable) on reload: the venv's bin must come first.
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def pg_params(self, dbname="postgres") -> dict:
        env = os.environ
        params = {
            "dbname": dbname,
            "host": env.get("PGHOST") or self.conf_value("db_host"),
            "port": env.get("PGPORT") or self.conf_value("db_port"),
            "user": env.get("PGUSER") or self.conf_value("db_user"),
            "password": env.get("PGPASSWORD") or self.conf_value("db_password"),
        }
        return {k: v for k, v in params.items() if v}

    def data_dir(self) -> Path | None:
        value = self.conf_value("data_dir")
        return Path(value) if value else None

    def odoo_cmd(self, *args) -> list[str]:
        return [str(self.python), str(self.odoo_bin), "-c", str(self.conf), *args]
