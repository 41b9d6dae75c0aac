"""File tools: read and edit the custom addons on the server's disk, inside a sandbox.

Every path goes through :class:`..lib.sandbox.Sandbox` (root = ``ocore_mcp.files_root``).
The tools act on the server's filesystem, not on records, so they are offered only to keys
owned by a system administrator (``admin_only``). A ``dry_run`` of a write tool touches no
file: it reports what would change.
"""

import ast
import base64
import binascii
import difflib
import fnmatch
import os
import shutil
import stat
import subprocess
import time
from datetime import datetime, timezone
from typing import Annotated, Literal

import regex as regex_lib
import whatthepatch
from pydantic import Field
from whatthepatch.exceptions import WhatThePatchException

from odoo import models

from ..lib.sandbox import SKIPPED_DIRS, Sandbox, is_binary
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

FILES = {"admin_only": True, "model_args": ()}
MAX_LISTED = 2000  # entries returned by file_browse / file_tree
MAX_SEARCH_FILE = 2 * 1024 * 1024  # larger files are skipped by search_in_code
MAX_LINE_SHOWN = 500  # characters of a matching line returned
MAX_DIFF = 20000  # characters of a diff preview
GIT_TIMEOUT = 10


def _iso(timestamp):
    return datetime.fromtimestamp(timestamp, timezone.utc).replace(microsecond=0).isoformat()


def _kind(path):
    if os.path.islink(path):
        return "symlink"
    if os.path.isdir(path):
        return "dir"
    if os.path.isfile(path):
        return "file"
    return "other"


def _manifest(directory):
    """(title, version, installable) of an addon directory, or None when it is not one."""
    for name in ("__manifest__.py", "__openerp__.py"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    data = ast.literal_eval(fh.read())
            except (OSError, ValueError, SyntaxError, UnicodeDecodeError):
                return {"title": None, "version": None, "manifest_error": True}
            if not isinstance(data, dict):
                return {"title": None, "version": None, "manifest_error": True}
            return {"title": data.get("name"), "version": data.get("version"),
                    "installable": data.get("installable", True)}
    return None


def _decode(data):
    """Text of a file's bytes: UTF-8, else Latin-1 (reported)."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


def _diff(old, new, shown):
    lines = list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                      fromfile=f"a/{shown}", tofile=f"b/{shown}"))
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    text = "".join(lines)
    if len(text) > MAX_DIFF:
        text = text[:MAX_DIFF] + "\n[diff truncated]"
    return text, added, removed


class FilesTools(models.AbstractModel):
    _name = "ocore.mcp.tools.files"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: files"

    # -- helpers (also used by scaffold_module) ---------------------------------------

    def _ocore_sandbox(self):
        """The sandbox of the configured custom addons root (refuses when it is not configured)."""
        call = self._call()
        settings = call.connection.settings if call else self.env["ocore.mcp.server"].sudo()._ocore_settings()
        return Sandbox(settings.get("files_root"))

    def _ocore_dry_run(self):
        call = self._call()
        return bool(call and call.dry_run)

    def _ocore_entry(self, box, absolute):
        st = os.lstat(absolute)
        entry = {"name": os.path.basename(absolute), "path": box.rel(absolute), "type": _kind(absolute)}
        if entry["type"] == "symlink":
            entry["target_type"] = _kind(os.path.realpath(absolute))
        if stat.S_ISREG(st.st_mode):
            entry["size"] = st.st_size
        entry["modified"] = _iso(st.st_mtime)
        return entry

    def _ocore_read_text(self, box, target, shown):
        data = box.read_bytes(target, shown)
        if is_binary(data):
            raise Refusal("invalid_input", f"{shown} is a binary file; it cannot be edited as text")
        return _decode(data)

    def _ocore_git_status(self, path):
        """Git status of ``path`` (file or directory) in its containing repository, or None."""
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        base = ["git", "-c", "core.fsmonitor=false", "-C", directory]
        try:
            top = subprocess.run([*base, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                                 timeout=GIT_TIMEOUT, env=env, check=False)
            if top.returncode != 0:
                if "not a git repository" in top.stderr:
                    return None
                return {"error": top.stderr.strip()[:300]}
            toplevel = top.stdout.strip()
            rel = os.path.relpath(os.path.realpath(path), os.path.realpath(toplevel))
            out = subprocess.run([*base, "status", "--porcelain=v1", "-z", "--ignored=matching",
                                  "--untracked-files=all", "--", f":(top,literal){rel}"], capture_output=True,
                                 timeout=GIT_TIMEOUT, env=env, check=False)
            branch = subprocess.run([*base, "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                                    text=True, timeout=GIT_TIMEOUT, env=env, check=False)
        except FileNotFoundError:
            return {"error": "git is not installed on the server"}
        except subprocess.TimeoutExpired:
            return {"error": f"git status took more than {GIT_TIMEOUT} s"}
        if out.returncode != 0:
            return {"error": out.stderr.decode(errors="replace").strip()[:300]}
        staged = modified = untracked = ignored = False
        changed = []
        records = out.stdout.decode(errors="replace").split("\0")
        skip_next = False
        for record in records:
            if skip_next:  # the original path of a rename
                skip_next = False
                continue
            if len(record) < 4:
                continue
            x, y, name = record[0], record[1], record[3:]
            if x in "RC":
                skip_next = True
            if x == "?" == y:
                untracked = True
            elif x == "!" == y:
                ignored = True
            else:
                staged = staged or x != " "
                modified = modified or y != " "
            changed.append({"path": name, "code": record[:2]})
        if staged and modified:
            status = "staged+modified"
        elif staged:
            status = "staged"
        elif modified:
            status = "modified"
        elif untracked:
            status = "untracked"
        elif ignored:
            status = "ignored"
        else:
            status = "clean"
        result = {"status": status, "staged": staged, "modified": modified, "untracked": untracked,
                  "repository": toplevel, "branch": branch.stdout.strip() if branch.returncode == 0 else None}
        if os.path.isdir(path):
            result["changed"] = changed[:100]
        return result

    # -- tools ------------------------------------------------------------------------------

    @mcp_tool("files", **FILES, title="Browse files")
    def _tool_file_browse(self, path: str | None = None):
        """List a directory of the custom addons (no path: every addon)."""
        box = self._ocore_sandbox()
        target, shown = box.resolve(path, kind="dir")
        directory = box.real(target, shown)
        entries = []
        names = sorted(os.listdir(directory))
        for name in names:
            absolute = os.path.join(directory, name)
            if not box.allowed_entry(absolute):
                continue
            entry = self._ocore_entry(box, os.path.join(target, name))
            if entry["type"] in ("dir", "symlink") and os.path.isdir(absolute):
                manifest = _manifest(absolute)
                if manifest is not None:
                    entry.update(addon=True, **manifest)
            entries.append(entry)
        entries.sort(key=lambda e: (e["type"] != "dir" and e.get("target_type") != "dir", e["name"]))
        result = {"path": shown, "entries": entries[:MAX_LISTED], "count": len(entries)}
        if not shown:
            result["root"] = box.root
            result["addons"] = [e["name"] for e in entries if e.get("addon")]
        if len(entries) > MAX_LISTED:
            result["truncated"] = True
        return result

    @mcp_tool("files", min_response_kb=150, **FILES, title="Read file")
    def _tool_file_read(
        self,
        path: str,
        start_line: Annotated[int, Field(ge=1)] | None = None,
        end_line: Annotated[int, Field(ge=1)] | None = None,
        encoding: Literal["utf-8", "base64"] = "utf-8",
        max_size_kb: Annotated[int, Field(ge=1, le=10240)] = 100,
    ):
        """Read a file (line range, or base64 for binary).

        Args:
            start_line: 1-based.
            end_line: Inclusive.
            encoding: base64: any file, whole.
            max_size_kb: Most KB returned (above 100, raise max_response_size too).
        """
        box = self._ocore_sandbox()
        target, shown = box.resolve(path, kind="file")
        real = box.real(target, shown)
        size = os.path.getsize(real)
        limit = max_size_kb * 1024
        if start_line and end_line and end_line < start_line:
            raise Refusal("invalid_input", f"end_line {end_line} is before start_line {start_line}")
        if encoding == "base64":
            if start_line or end_line:
                raise Refusal("invalid_input", "line ranges apply to text files; base64 returns the whole file")
            if size > limit:
                raise Refusal("invalid_input", f"{shown} is {size} bytes, more than max_size_kb={max_size_kb}; "
                              "raise max_size_kb (and max_response_size)")
            data = box.read_bytes(target, shown)
            return {"path": shown, "encoding": "base64", "size": len(data),
                    "content": base64.b64encode(data).decode()}
        head = box.read_bytes(target, shown, 8192)
        if is_binary(head):
            raise Refusal("invalid_input", f'{shown} is a binary file: read it with encoding: "base64"')
        first = start_line or 1
        last = end_line
        chunks, used, total, truncated, stop = [], 0, 0, False, None
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            for number, line in enumerate(fh, 1):
                total = number
                if number < first or (last and number > last) or truncated:
                    continue
                if used + len(line) > limit:
                    truncated = True
                    stop = number
                    continue
                chunks.append(line)
                used += len(line)
        if first > max(total, 1):
            raise Refusal("invalid_input", f"start_line {first} is past the end of {shown} ({total} lines)")
        text, charset = _decode(b"".join(chunks))
        result = {
            "path": shown,
            "encoding": "utf-8",
            "size": size,
            "total_lines": total,
            "start_line": first,
            "end_line": first + len(chunks) - 1 if chunks else first,
            "content": text,
            "truncated": truncated,
        }
        if charset != "utf-8":
            result["decoded_as"] = charset
        if truncated:
            result["next_start_line"] = stop
            result["note"] = (f"stopped at max_size_kb={max_size_kb}: continue with start_line={stop} "
                              "or raise max_size_kb")
        return result

    @mcp_tool("files", kind="write", **FILES, title="Edit file")
    def _tool_file_write(
        self,
        path: str,
        mode: Literal["full_content", "patch", "insert_at_line"] = "full_content",
        content: str | None = None,
        patch: str | None = None,
        line: Annotated[int, Field(ge=1)] | None = None,
    ):
        """Edit a file: full_content, patch (unified diff) or insert_at_line.

        Args:
            content: full_content / insert_at_line text.
            patch: Unified diff; all hunks must match.
            line: insert_at_line: before this line (1-based).
        """
        box = self._ocore_sandbox()
        target, shown = box.resolve(path, kind="file")
        old, charset = self._ocore_read_text(box, target, shown)
        newline = _newline(old)
        hunks = None
        if mode == "full_content":
            if content is None:
                raise Refusal("invalid_input", "content is required for mode full_content")
            new = content
        elif mode == "patch":
            if not patch:
                raise Refusal("invalid_input", "patch (a unified diff) is required for mode patch")
            new, hunks = self._ocore_apply_patch(old, patch, shown, newline)
        else:
            if content is None or line is None:
                raise Refusal("invalid_input", "content and line are required for mode insert_at_line")
            lines = old.splitlines(keepends=True)
            if line > len(lines) + 1:
                raise Refusal("invalid_input", f"line {line} is past the end of {shown} ({len(lines)} lines; "
                              f"use {len(lines) + 1} to append)")
            insert = content if content.endswith(("\n", "\r")) else content + newline
            if lines and not lines[-1].endswith(("\n", "\r")) and line == len(lines) + 1:
                lines[-1] += newline
            lines[line - 1:line - 1] = [insert]
            new = "".join(lines)
        diff, added, removed = _diff(old, new, shown)
        result = {"path": shown, "mode": mode, "changed": new != old, "lines_added": added,
                  "lines_removed": removed, "size_before": len(old.encode(charset))}
        if hunks is not None:
            result["hunks_applied"] = hunks
        try:
            data = new.encode(charset)
        except UnicodeEncodeError:
            data = new.encode("utf-8")
        result["size"] = len(data)
        if self._ocore_dry_run():
            result["diff"] = diff
            return result
        if new != old:
            box.write_bytes(target, shown, data)
        return result

    def _ocore_apply_patch(self, old, patch, shown, newline):
        try:
            diffs = [d for d in whatthepatch.parse_patch(patch) if d.changes]
        except WhatThePatchException as exc:
            raise Refusal("invalid_input", f"patch: not a valid unified diff ({exc})") from None
        if not diffs:
            raise Refusal("invalid_input", "patch: no hunk found; give a unified diff with @@ -a,b +c,d @@ hunks")
        if len(diffs) > 1:
            raise Refusal("invalid_input", "patch: the diff changes several files; send one file's diff per call")
        diff = diffs[0]
        header = diff.header
        if header:
            names = {os.path.basename(p) for p in (header.old_path, header.new_path) if p and p != "/dev/null"}
            if names and os.path.basename(shown) not in names:
                raise Refusal("invalid_input", f"patch: the diff is for {', '.join(sorted(names))}, not {shown}")
        try:
            lines = whatthepatch.apply_diff(diff, old)
        except WhatThePatchException as exc:
            raise Refusal("invalid_input", f"patch does not apply to {shown}: {exc}. Nothing was written; "
                          "read the file again and rebuild the diff") from None
        new = newline.join(lines)
        if lines and (old.endswith(("\n", "\r")) or not old):
            new += newline
        return new, len({c.hunk for c in diff.changes})

    @mcp_tool("files", kind="write", **FILES, title="Create file")
    def _tool_file_create(
        self,
        path: str,
        content: str = "",
        is_directory: bool = False,
        encoding: Literal["utf-8", "base64"] = "utf-8",
    ):
        """Create a file or directory (parents created)."""
        box = self._ocore_sandbox()
        target, shown = box.resolve(path, must_exist=False)
        if not shown:
            raise Refusal("invalid_input", "path is required")
        if is_directory and content:
            raise Refusal("invalid_input", "a directory has no content")
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise Refusal("invalid_input", "content is not valid base64") from None
        else:
            data = content.encode()
        parent = os.path.dirname(target)
        missing = []
        probe = parent
        while not os.path.lexists(probe):
            missing.append(box.rel(probe))
            probe = os.path.dirname(probe)
        if os.path.lexists(probe) and not os.path.isdir(probe):
            raise Refusal("invalid_input", f"{box.rel(probe)} is a file, not a directory")
        result = {"path": shown, "type": "dir" if is_directory else "file",
                  "created_directories": list(reversed(missing))}
        if not is_directory:
            result["size"] = len(data)
        if self._ocore_dry_run():
            return result
        box.makedirs(parent, shown)
        if is_directory:
            os.mkdir(target, 0o755)
            box.check_real(os.path.realpath(target), shown)
        else:
            box.write_bytes(target, shown, data, create=True)
        return result

    @mcp_tool("files", kind="destructive", **FILES, title="Delete file")
    def _tool_file_delete(self, path: str, recursive: bool = False):
        """Delete a file or directory.

        Args:
            recursive: Also a non-empty directory.
        """
        box = self._ocore_sandbox()
        target, shown = box.resolve(path)
        if not shown:
            raise Refusal("path_denied", "the custom addons root itself cannot be deleted")
        kind = _kind(target)
        result = {"path": shown, "deleted": kind}
        if kind == "dir":
            real = box.real(target, shown)
            if any(p == real or p.startswith(real + os.sep) for p in box.protected):
                raise Refusal("path_denied", f"{shown} contains Odoo's own files")
            files, dirs = 0, 0
            for current, subdirs, names in os.walk(real):
                for sub in subdirs:
                    if sub.casefold() == ".git":
                        raise Refusal("path_denied", f"{shown} contains a git repository ({box.rel(current)}/.git);"
                                      " file tools do not delete it")
                dirs += len(subdirs)
                files += len(names)
            if (files or dirs) and not recursive:
                raise Refusal("invalid_input", f"{shown} is a directory with {files} file(s) and {dirs} "
                              "subdirectories: pass recursive: true to delete it all")
            result.update(files_deleted=files, directories_deleted=dirs + 1)
            if not self._ocore_dry_run():
                shutil.rmtree(real)
        else:
            result["files_deleted"] = 1
            if not self._ocore_dry_run():
                os.unlink(target)
        return result

    @mcp_tool("files", **FILES, title="File info")
    def _tool_file_info(self, path: str):
        """A file's size, permissions, modification time and git status."""
        box = self._ocore_sandbox()
        target, shown = box.resolve(path)
        st = os.lstat(target)
        info = {
            "path": shown,
            "type": _kind(target),
            "size": st.st_size,
            "mode": oct(stat.S_IMODE(st.st_mode)),
            "permissions": stat.filemode(st.st_mode),
            "modified": _iso(st.st_mtime),
            "changed": _iso(st.st_ctime),
            "readable": os.access(target, os.R_OK),
            "writable": os.access(target, os.W_OK),
        }
        if info["type"] == "symlink":
            info["symlink_target"] = box.rel(box.real(target, shown))
            info["target_type"] = _kind(os.path.realpath(target))
        real = box.real(target, shown)
        if os.path.isfile(real):
            head = box.read_bytes(target, shown, 8192)
            info["binary"] = is_binary(head)
        elif os.path.isdir(real):
            manifest = _manifest(real)
            if manifest is not None:
                info["addon"] = manifest
        info["git"] = self._ocore_git_status(real)
        return info

    @mcp_tool("files", **FILES, title="File tree")
    def _tool_file_tree(self, path: str | None = None, depth: Annotated[int, Field(ge=1, le=3)] = 3):
        """Recursive listing."""
        box = self._ocore_sandbox()
        target, shown = box.resolve(path, kind="dir")
        start = box.real(target, shown)
        entries = []
        truncated = False

        def walk(directory, level):
            nonlocal truncated
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                return
            for name in names:
                if len(entries) >= MAX_LISTED:
                    truncated = True
                    return
                absolute = os.path.join(directory, name)
                if name in SKIPPED_DIRS or not box.allowed_entry(absolute):
                    continue
                kind = _kind(absolute)
                entry = {"path": box.rel(absolute), "type": kind, "depth": level}
                if kind == "file":
                    entry["size"] = os.path.getsize(absolute)
                entries.append(entry)
                if kind == "dir" and level < depth:
                    walk(absolute, level + 1)

        walk(start, 1)
        files = sum(1 for e in entries if e["type"] == "file")
        return {"path": shown, "depth": depth, "entries": entries, "files": files,
                "directories": sum(1 for e in entries if e["type"] == "dir"), "truncated": truncated}

    @mcp_tool("files", kind="write", **FILES, title="Move file")
    def _tool_file_move(self, source: str, destination: str, overwrite: bool = False):
        """Move or rename a file."""
        box = self._ocore_sandbox()
        src, src_shown = box.resolve(source)
        if not src_shown:
            raise Refusal("path_denied", "the custom addons root itself cannot be moved")
        dst, dst_shown = box.resolve(destination, must_exist=None)
        if not dst_shown:
            raise Refusal("invalid_input", "destination is required")
        if dst == src:
            raise Refusal("invalid_input", "source and destination are the same")
        if os.path.lexists(dst):
            if not overwrite:
                raise Refusal("invalid_input", f"{dst_shown} already exists; pass overwrite: true to replace it")
            if os.path.isdir(dst) or os.path.isdir(src):
                raise Refusal("invalid_input", "overwrite replaces a file by a file, not directories")
        if _kind(src) == "dir" and (dst + os.sep).startswith(src + os.sep):
            raise Refusal("invalid_input", "a directory cannot be moved into itself")
        result = {"source": src_shown, "destination": dst_shown, "type": _kind(src),
                  "overwritten": os.path.lexists(dst)}
        if self._ocore_dry_run():
            return result
        result["created_directories"] = box.makedirs(os.path.dirname(dst), dst_shown)
        try:
            os.replace(src, dst)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: another filesystem under the root
                raise
            shutil.move(src, dst)
        return result

    @mcp_tool("files", **FILES, title="Search code")
    def _tool_search_in_code(
        self,
        pattern: str,
        regex: bool = False,
        addon: str | None = None,
        include: str | None = None,
        case_sensitive: bool = False,
        context_lines: Annotated[int, Field(ge=0, le=10)] = 2,
        max_results: Annotated[int, Field(ge=1, le=1000)] = 100,
    ):
        """Search text or a regex in the custom addons' code: path, line, match with context.

        Args:
            include: Glob, e.g. "*.py".
        """
        if not pattern:
            raise Refusal("invalid_input", "pattern is empty")
        if len(pattern) > 1000:
            raise Refusal("invalid_input", "pattern is longer than 1000 characters")
        box = self._ocore_sandbox()
        target, shown = box.resolve(addon, kind="dir")
        start = box.real(target, shown)
        if regex:
            try:
                compiled = regex_lib.compile(pattern, 0 if case_sensitive else regex_lib.IGNORECASE)
            except regex_lib.error as exc:
                raise Refusal("invalid_input", f"pattern is not a valid regular expression: {exc}") from None
        else:
            needle = pattern if case_sensitive else pattern.lower()
        call = self._call()
        budget = time.monotonic() + (call.timeout if call else 15)
        matches, searched, matched_files, truncated, skipped = [], 0, 0, False, 0
        for current, subdirs, names in os.walk(start):
            subdirs[:] = sorted(d for d in subdirs
                                if d not in SKIPPED_DIRS and box.allowed_entry(os.path.join(current, d))
                                and not os.path.islink(os.path.join(current, d)))
            for name in sorted(names):
                if truncated:
                    break
                if include and not fnmatch.fnmatch(name, include):
                    continue
                absolute = os.path.join(current, name)
                if os.path.islink(absolute) or not box.allowed_entry(absolute) or not os.path.isfile(absolute):
                    continue
                try:
                    if os.path.getsize(absolute) > MAX_SEARCH_FILE:
                        skipped += 1
                        continue
                    with open(absolute, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if is_binary(data):
                    continue
                searched += 1
                text, _charset = _decode(data)
                if not regex and needle not in (text if case_sensitive else text.lower()):
                    continue
                lines = text.splitlines()
                found = False
                for index, line in enumerate(lines):
                    if regex:
                        remaining = budget - time.monotonic()
                        try:
                            hit = compiled.search(line, timeout=max(0.05, remaining))
                        except TimeoutError:
                            raise Refusal("invalid_input", "the regular expression is too slow on this code "
                                          "(catastrophic backtracking?); simplify it") from None
                    else:
                        hit = needle in (line if case_sensitive else line.lower())
                    if not hit:
                        continue
                    found = True
                    if len(matches) >= max_results:
                        truncated = True
                        break
                    matches.append({
                        "path": box.rel(absolute),
                        "line": index + 1,
                        "content": line[:MAX_LINE_SHOWN],
                        "before": [x[:MAX_LINE_SHOWN] for x in lines[max(0, index - context_lines):index]],
                        "after": [x[:MAX_LINE_SHOWN] for x in lines[index + 1:index + 1 + context_lines]],
                    })
                matched_files += found
            if truncated:
                break
        result = {"pattern": pattern, "scope": shown or ".", "matches": matches, "count": len(matches),
                  "files_searched": searched, "files_matched": matched_files, "truncated": truncated}
        if skipped:
            result["skipped_large_files"] = skipped
        return result
