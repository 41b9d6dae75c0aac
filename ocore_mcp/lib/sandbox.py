"""The files sandbox: every path a file tool (or ``scaffold_module``) touches is resolved here.

Paths are relative to the configured custom-addons root (``ocore_mcp.files_root``). Refused:
absolute paths, ``..``, NUL bytes, backslashes, anything inside a ``.git`` directory (as written or
once symlinks are resolved: a link to ``.git``, into it or to a parent of it), symlinks whose target
leaves the root, and, whatever the root is, Odoo's own source tree and its data
directory (filestore, sessions).
"""

import os

from .errors import Refusal

# never listed, searched or entered
HIDDEN_DIRS = frozenset({".git"})


def _hidden(name):
    """The hidden directory ``name`` is, whatever its case (``.GIT`` is ``.git`` on a case-insensitive file
    system: macOS, Windows shares), or None."""
    folded = name.casefold()
    return folded if folded in HIDDEN_DIRS else None


# skipped by the recursive tools (tree, search)
SKIPPED_DIRS = frozenset({".git", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"})

CONFIGURE_HINT = (
    "set the custom addons root in Settings > MCP (Custom addons root), i.e. the system parameter "
    "ocore_mcp.files_root, to the absolute path of your custom addons directory"
)


def _inside(path, base):
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def protected_dirs():
    """Real paths the file tools never reach: Odoo's source tree and its data directory."""
    import odoo
    from odoo.tools import config

    dirs = set()
    for path in getattr(odoo, "__path__", []):
        real = os.path.realpath(path)
        dirs.add(real)
        parent = os.path.dirname(real)
        # a source checkout (odoo-bin beside the package) is Odoo's own tree as a whole
        if any(os.path.exists(os.path.join(parent, name)) for name in ("odoo-bin", "setup.py", "pyproject.toml")):
            dirs.add(parent)
    data_dir = config.get("data_dir")
    if data_dir:
        dirs.add(os.path.realpath(data_dir))
    return sorted(dirs)


def is_binary(data):
    return b"\0" in data[:8192]


class Sandbox:
    """The resolved custom-addons root and the checks every path goes through."""

    def __init__(self, root_setting, protected=None):
        if not root_setting or not str(root_setting).strip():
            raise Refusal("not_configured", f"the file tools have no custom addons root: {CONFIGURE_HINT}")
        root_setting = str(root_setting).strip()
        if not os.path.isabs(root_setting):
            raise Refusal("not_configured", f"the custom addons root {root_setting!r} is not an absolute path: "
                          f"{CONFIGURE_HINT}")
        root = os.path.realpath(root_setting)
        if not os.path.isdir(root):
            raise Refusal("not_configured", f"the custom addons root {root_setting!r} is not an existing "
                          f"directory: {CONFIGURE_HINT}")
        if root == os.path.realpath(os.sep):
            raise Refusal("not_configured", f"the custom addons root cannot be the filesystem root: {CONFIGURE_HINT}")
        self.protected = protected_dirs() if protected is None else [os.path.realpath(p) for p in protected]
        for base in self.protected:
            if _inside(root, base):
                raise Refusal(
                    "not_configured",
                    f"the custom addons root {root_setting!r} lies inside Odoo's own source tree or data "
                    f"directory, which the file tools never touch: {CONFIGURE_HINT}",
                )
        self.root = root

    # -- paths -------------------------------------------------------------------------

    def split(self, path):
        """Validate a client path; return its normalised parts (empty for the root)."""
        if path is None:
            return []
        if not isinstance(path, str):
            raise Refusal("invalid_input", "path must be a string")
        if "\0" in path:
            raise Refusal("path_denied", "path contains a NUL byte")
        if "\\" in path:
            raise Refusal("path_denied", f"path {path!r} contains a backslash; use '/' separators")
        if path.startswith(("/", "~")) or os.path.isabs(path):
            raise Refusal("path_denied", f"path {path!r} is absolute; give a path relative to the custom addons root")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise Refusal("path_denied", f"path {path!r} contains '..': paths cannot leave the custom addons root")
        hidden = [_hidden(p) for p in parts if _hidden(p)]
        if hidden:
            raise Refusal("path_denied", f"path {path!r} is inside a {hidden[0]} directory, which file tools "
                          "do not touch")
        return parts

    def check_real(self, real, shown):
        """Refuse a resolved path outside the root, inside a hidden directory (``.git``: a symlink to it, to a
        file in it or to a parent of it is no way in) or in Odoo's own trees."""
        if not _inside(real, self.root):
            raise Refusal("path_denied", f"path {shown!r} resolves outside the custom addons root (symlink)")
        hidden = [_hidden(p) for p in os.path.relpath(real, self.root).split(os.sep) if _hidden(p)]
        if hidden:
            raise Refusal("path_denied", f"path {shown!r} resolves inside a {hidden[0]} directory, which file tools "
                          "do not touch")
        for base in self.protected:
            if _inside(real, base):
                raise Refusal("path_denied", f"path {shown!r} reaches Odoo's own source tree or data directory")
        return real

    def resolve(self, path, must_exist=True, kind=None):
        """Return ``(target, shown)`` for a client path.

        ``target`` is the real parent directory joined with the last component (so a
        symlink is itself the target of delete/move/info); a symlink's destination is
        checked to stay inside the root too. ``kind`` ("file"/"dir") checks the type.
        """
        parts = self.split(path)
        shown = "/".join(parts)
        if not parts:
            target = self.root
        else:
            parent = self.check_real(os.path.realpath(os.path.join(self.root, *parts[:-1])), shown)
            target = os.path.join(parent, parts[-1])
            if os.path.lexists(target):  # an existing file, directory or symlink: its destination too
                self.check_real(os.path.realpath(target), shown)
        exists = os.path.lexists(target)
        if must_exist and not exists:
            raise Refusal("not_found", f"{shown or '.'} does not exist")
        if must_exist is False and exists:
            raise Refusal("invalid_input", f"{shown} already exists")
        if exists and kind == "file" and not os.path.isfile(target):
            raise Refusal("invalid_input", f"{shown or '.'} is not a regular file")
        if exists and kind == "dir" and not os.path.isdir(target):
            raise Refusal("invalid_input", f"{shown or '.'} is not a directory")
        return target, shown

    def real(self, target, shown):
        """The real path of an existing target (following a checked symlink)."""
        return self.check_real(os.path.realpath(target), shown)

    def rel(self, absolute):
        """The client-visible path of a path under the root."""
        rel = os.path.relpath(absolute, self.root)
        return "" if rel == "." else rel.replace(os.sep, "/")

    def allowed_entry(self, absolute):
        """Whether a directory entry met while listing may be shown (not hidden, not protected, no escaping link)."""
        if os.path.basename(absolute) in HIDDEN_DIRS:
            return False
        real = os.path.realpath(absolute)
        if not _inside(real, self.root):
            return False
        if any(p in HIDDEN_DIRS for p in os.path.relpath(real, self.root).split(os.sep)):
            return False  # a symlink into .git
        return not any(_inside(real, base) for base in self.protected)

    # -- reading and writing -------------------------------------------------------------

    def read_bytes(self, target, shown, limit=None):
        real = self.real(target, shown)
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read() if limit is None else fh.read(limit)

    def write_bytes(self, target, shown, data, create=False):
        """Write ``data`` to an existing file (or a new one with ``create``); keep its permissions."""
        real = target if create else self.real(target, shown)
        flags = os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        fd = os.open(real, flags, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return real

    def makedirs(self, target, shown):
        """Create ``target`` and its missing parents, each checked to stay in the root."""
        missing = []
        current = target
        while not os.path.lexists(current):
            missing.append(current)
            current = os.path.dirname(current)
        self.check_real(os.path.realpath(current), shown)
        for path in reversed(missing):
            os.mkdir(path, 0o755)
            self.check_real(os.path.realpath(path), shown)
        return [self.rel(p) for p in reversed(missing)]
