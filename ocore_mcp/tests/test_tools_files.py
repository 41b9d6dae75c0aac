import base64
import os
import shutil
import subprocess
import tempfile
from unittest.mock import patch

import odoo
from odoo.tests import tagged
from odoo.tools import config

from .common import McpToolCase

PARTNER_PY = "".join(f"line {i}\n" for i in range(1, 31))


def _git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    )


@tagged("post_install", "-at_install")
class TestFilesTools(McpToolCase):
    """The file tools on a real temporary custom addons root, through the policy pipeline."""

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(prefix="ocore_files_root_")
        self.outside = tempfile.mkdtemp(prefix="ocore_files_outside_")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.addCleanup(shutil.rmtree, self.outside, True)
        self.write_file("my_addon/__manifest__.py", "{'name': 'My Addon', 'version': '18.0.1.2.0', 'depends': ['base']}\n")
        self.write_file("my_addon/__init__.py", "from . import models\n")
        self.write_file("my_addon/models/partner.py", PARTNER_PY)
        self.write_file("my_addon/static/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary")
        self.write_file("my_addon/__pycache__/partner.cpython-311.pyc", "line 1 cached\n")
        self.write_file("other_addon/__manifest__.py", "{'name': 'Other', 'version': '1.0'}\n")
        self.write_file("other_addon/data.xml", "<odoo><record id='x' model='res.partner'/></odoo>\n")
        self.write_file("notes.txt", "hello\n")
        with open(os.path.join(self.outside, "secret.txt"), "w") as fh:
            fh.write("top secret line 1\n")
        os.symlink(self.outside, os.path.join(self.root, "escape_dir"))
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "escape_file.txt"))
        os.symlink("my_addon/models/partner.py", os.path.join(self.root, "inside_link.py"))
        self.settings = dict(self.settings, files_root=self.root)

    def write_file(self, rel, content):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(content, bytes) else "w") as fh:
            fh.write(content)

    def disk(self, rel):
        with open(os.path.join(self.root, rel)) as fh:
            return fh.read()

    # -- configuration and sandbox ----------------------------------------------------------

    def test_not_configured_says_how(self):
        text = self.fails("file_browse", {}, "not configured", files_root="")
        self.assertIn("Settings > MCP", text)
        self.assertIn("ocore_mcp.files_root", text)
        self.fails("file_read", {"path": "notes.txt"}, "not an absolute path", files_root="relative/dir")
        self.fails("file_read", {"path": "x"}, "not an existing directory",
                   files_root=os.path.join(self.root, "missing"))
        self.fails("file_browse", {}, "filesystem root", files_root="/")

    def test_root_inside_odoo_source_or_data_dir_is_refused(self):
        odoo_source = os.path.dirname(os.path.realpath(odoo.__path__[0]))
        for root in (os.path.join(odoo_source, "addons"), os.path.realpath(odoo.__path__[0]), odoo_source):
            if not os.path.isdir(root):  # 17.0 and 19.0 packages have no addons/ beside odoo/
                continue
            self.fails("file_browse", {}, "Odoo's own source tree", files_root=root)
        data_dir = os.path.join(self.root, "odoo_data")
        os.makedirs(os.path.join(data_dir, "filestore"))
        with patch.dict(config.options, {"data_dir": data_dir}):
            self.fails("file_browse", {}, "Odoo's own source tree or data directory", files_root=data_dir)
            # a data dir inside the root: hidden from listings, refused as a path
            names = [e["name"] for e in self.ok("file_browse", {})["entries"]]
            self.assertNotIn("odoo_data", names)
            self.assertIn("my_addon", names)
            self.fails("file_browse", {"path": "odoo_data/filestore"}, "Odoo's own source tree or data directory")
            self.fails("file_create", {"path": "odoo_data/filestore/x.txt", "content": "x"}, "data directory")
            self.fails("file_delete", {"path": "odoo_data", "recursive": True, "confirm": True}, "data directory")
            self.assertTrue(os.path.isdir(os.path.join(data_dir, "filestore")))

    def test_path_escapes_are_refused(self):
        cases = {
            "../etc/passwd": "contains '..'",
            "my_addon/../../x": "contains '..'",
            "/etc/passwd": "is absolute",
            "~/x": "is absolute",
            "notes\0.txt": "NUL byte",
            "my_addon\\models": "backslash",
            "escape_dir/secret.txt": "resolves outside the custom addons root",
            "escape_file.txt": "resolves outside the custom addons root",
            ".git/config": "inside a .git directory",
        }
        for path, expected in cases.items():
            with self.subTest(path=path):
                text = self.fails("file_read", {"path": path}, expected)
                self.assertTrue(text.startswith("permission denied"), text)
        self.fails("file_create", {"path": "escape_dir/new.txt", "content": "x"}, "outside the custom addons root")
        self.fails("file_create", {"path": "escape_dir/sub/new.txt", "content": "x"}, "outside the custom addons root")
        self.assertFalse(os.path.exists(os.path.join(self.outside, "new.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.outside, "sub")))
        self.fails("file_write", {"path": "escape_file.txt", "content": "pwned"}, "outside")
        with open(os.path.join(self.outside, "secret.txt")) as fh:
            self.assertEqual(fh.read(), "top secret line 1\n")
        self.fails("file_move", {"source": "notes.txt", "destination": "escape_dir/notes.txt"}, "outside")
        self.assertTrue(os.path.exists(os.path.join(self.root, "notes.txt")))
        self.fails("search_in_code", {"pattern": "secret", "addon": "escape_dir"}, "outside")

    def test_admin_only_and_write_guards(self):
        user = self.make_user("files_user", [self.env.ref("base.group_user").id,
                                             self.env.ref("ocore_mcp.group_mcp_user").id])
        key, _s = self.keys._ocore_create_key("files user key", user)
        self.fails("file_read", {"path": "notes.txt"}, "only offered to system administrators", key=key)
        ro_key, _s = self.keys._ocore_create_key("files ro", self.admin, read_only=True)
        self.assertEqual(self.ok("file_read", {"path": "notes.txt"}, key=ro_key)["content"], "hello\n")
        self.fails("file_write", {"path": "notes.txt", "content": "x"}, "write operations blocked", key=ro_key)
        self.fails("file_create", {"path": "n.txt"}, "write operations blocked", write_enabled=False)
        self.assertEqual(self.disk("notes.txt"), "hello\n")
        self.assertFalse(os.path.exists(os.path.join(self.root, "n.txt")))

    # -- reading ------------------------------------------------------------------------------

    def test_browse(self):
        data = self.ok("file_browse", {})
        self.assertEqual(data["root"], os.path.realpath(self.root))
        self.assertEqual(data["addons"], ["my_addon", "other_addon"])
        entries = {e["name"]: e for e in data["entries"]}
        self.assertEqual(entries["my_addon"]["title"], "My Addon")
        self.assertEqual(entries["my_addon"]["version"], "18.0.1.2.0")
        self.assertEqual(entries["notes.txt"], {**entries["notes.txt"], "type": "file", "size": 6})
        self.assertEqual(entries["inside_link.py"]["type"], "symlink")
        self.assertNotIn("escape_dir", entries)  # links leaving the root are not shown
        self.assertNotIn("escape_file.txt", entries)
        sub = self.ok("file_browse", {"path": "my_addon/models"})
        self.assertEqual([e["path"] for e in sub["entries"]], ["my_addon/models/partner.py"])
        self.fails("file_browse", {"path": "notes.txt"}, "is not a directory")
        self.fails("file_browse", {"path": "nope"}, "not found: nope does not exist")

    def test_read_text_ranges_and_limits(self):
        data = self.ok("file_read", {"path": "my_addon/models/partner.py"})
        self.assertEqual(data["content"], PARTNER_PY)
        self.assertEqual((data["total_lines"], data["start_line"], data["end_line"]), (30, 1, 30))
        self.assertFalse(data["truncated"])
        part = self.ok("file_read", {"path": "my_addon/models/partner.py", "start_line": 5, "end_line": 7})
        self.assertEqual(part["content"], "line 5\nline 6\nline 7\n")
        self.assertEqual((part["start_line"], part["end_line"]), (5, 7))
        self.fails("file_read", {"path": "my_addon/models/partner.py", "start_line": 31}, "past the end")
        self.fails("file_read", {"path": "my_addon/models/partner.py", "start_line": 5, "end_line": 2},
                   "before start_line")
        # through a symlink that stays inside the root
        self.assertEqual(self.ok("file_read", {"path": "inside_link.py", "end_line": 1})["content"], "line 1\n")
        # max size: stops at a line boundary and says where to go on
        self.write_file("big.txt", "".join(f"{i:09d}\n" for i in range(300)))  # 3000 bytes
        big = self.ok("file_read", {"path": "big.txt", "max_size_kb": 1})
        self.assertTrue(big["truncated"])
        self.assertEqual(big["end_line"], 102)
        self.assertEqual(big["next_start_line"], 103)
        self.assertEqual(len(big["content"]), 1020)
        rest = self.ok("file_read", {"path": "big.txt", "start_line": 103, "max_size_kb": 3})
        self.assertEqual(rest["content"].splitlines()[0], "000000102")
        self.assertFalse(rest["truncated"])

    def test_read_default_max_is_100_kb(self):
        # 90 KB of text: larger than the 50 KB default response size, within file_read's 100 KB default
        self.write_file("large.py", "x = 1  # padding padding padding padding padding padding padding pad\n" * 1300)
        data = self.ok("file_read", {"path": "large.py"})
        self.assertFalse(data["truncated"])
        self.assertEqual(data["total_lines"], 1300)
        self.assertEqual(len(data["content"]), os.path.getsize(os.path.join(self.root, "large.py")))
        self.write_file("larger.py", "y" * 99 + "\n" + "z" * 120 * 1024)
        self.assertTrue(self.ok("file_read", {"path": "larger.py"})["truncated"])

    def test_read_binary(self):
        self.fails("file_read", {"path": "my_addon/static/logo.png"}, 'binary file: read it with encoding: "base64"')
        data = self.ok("file_read", {"path": "my_addon/static/logo.png", "encoding": "base64"})
        self.assertEqual(base64.b64decode(data["content"]), b"\x89PNG\r\n\x1a\n\0\0\0binary")
        self.fails("file_read", {"path": "my_addon/static/logo.png", "encoding": "base64", "start_line": 2},
                   "line ranges apply to text files")
        self.write_file("blob.bin", b"\0" * 3000)
        self.fails("file_read", {"path": "blob.bin", "encoding": "base64", "max_size_kb": 2}, "more than max_size_kb=2")

    def test_info_and_git_status(self):
        info = self.ok("file_info", {"path": "notes.txt"})
        self.assertEqual((info["type"], info["size"], info["binary"]), ("file", 6, False))
        self.assertEqual(info["mode"], oct(os.stat(os.path.join(self.root, "notes.txt")).st_mode & 0o777))
        self.assertTrue(info["permissions"].startswith("-rw"))
        self.assertIsNone(info["git"])  # not in a repository
        self.assertEqual(self.ok("file_info", {"path": "my_addon"})["addon"]["title"], "My Addon")
        self.assertEqual(self.ok("file_info", {"path": "inside_link.py"})["symlink_target"],
                         "my_addon/models/partner.py")
        self.assertTrue(self.ok("file_info", {"path": "my_addon/static/logo.png"})["binary"])
        # git: clean, modified, staged, untracked
        os.unlink(os.path.join(self.root, "escape_dir"))
        os.unlink(os.path.join(self.root, "escape_file.txt"))
        _git(self.root, "init", "-q")
        _git(self.root, "add", "-A")
        _git(self.root, "commit", "-q", "-m", "initial")
        clean = self.ok("file_info", {"path": "notes.txt"})["git"]
        self.assertEqual(clean["status"], "clean")
        self.assertEqual(clean["repository"], os.path.realpath(self.root))
        self.assertEqual(clean["branch"], "main")
        self.write_file("notes.txt", "changed\n")
        self.assertEqual(self.ok("file_info", {"path": "notes.txt"})["git"]["status"], "modified")
        _git(self.root, "add", "notes.txt")
        self.assertEqual(self.ok("file_info", {"path": "notes.txt"})["git"]["status"], "staged")
        self.write_file("notes.txt", "changed again\n")
        self.assertEqual(self.ok("file_info", {"path": "notes.txt"})["git"]["status"], "staged+modified")
        self.write_file("my_addon/new.py", "x = 1\n")
        self.assertEqual(self.ok("file_info", {"path": "my_addon/new.py"})["git"]["status"], "untracked")
        directory = self.ok("file_info", {"path": "my_addon"})["git"]
        self.assertEqual(directory["status"], "untracked")
        self.assertEqual(directory["changed"], [{"path": "my_addon/new.py", "code": "??"}])
        self.fails("file_info", {"path": ".git"}, "inside a .git directory")

    def test_symlinks_into_git_are_refused(self):
        """The .git guard checks the resolved path: a link to .git, into it, to a parent of it, or a path
        through a linked directory never reaches .git/config or a hook."""
        self.write_file(".git/config", "[core]\n\tbare = false\n")
        self.write_file(".git/hooks/pre-commit", "#!/bin/sh\nexit 0\n")
        self.write_file("repo/.git/config", "[core]\n")
        links = {
            "gitdir": ".git",  # the directory itself
            "cfg": ".git/config",  # a file in it
            "hooks": ".git/hooks",  # a directory in it
            "my_addon/cfg.py": "../.git/config",  # relative, from a subdirectory
            "my_addon/dotdot": "..",  # a parent directory of .git
            "repo_link": "repo/.git",  # a nested repository
            "absolute_cfg": os.path.join(self.root, ".git", "config"),
            "chain": "gitdir",  # a link to a link
            "dangling_hook": ".git/hooks/post-checkout",  # not there yet: create would write a hook
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(self.root, name))
        before = {p: self.disk(p) for p in (".git/config", ".git/hooks/pre-commit", "repo/.git/config")}
        reads = ["gitdir/config", "cfg", "hooks/pre-commit", "my_addon/cfg.py", "repo_link/config", "absolute_cfg",
                 "chain/config", "chain/hooks/pre-commit"]
        for path in reads:
            with self.subTest(path=path):
                self.fails("file_read", {"path": path}, ".git directory")
                self.fails("file_info", {"path": path}, ".git directory")
                self.fails("file_write", {"path": path, "content": "[core]\n\tfsmonitor = /tmp/x\n"}, ".git directory")
                self.fails("file_write", {"path": path, "mode": "insert_at_line", "line": 1, "content": "x\n"},
                           ".git directory")
                self.fails("file_delete", {"path": path, "confirm": True}, ".git directory")
                self.fails("file_move", {"source": path, "destination": "stolen.txt"}, ".git directory")
                self.fails("file_move", {"source": "notes.txt", "destination": path, "overwrite": True},
                           ".git directory")
        for path in ("gitdir/hooks/post-merge", "hooks/post-merge", "chain/hooks/x", "dangling_hook",
                     "repo_link/hooks/pre-push", "my_addon/dotdot/.git/hooks/x"):
            with self.subTest(path=path):
                self.fails("file_create", {"path": path, "content": "#!/bin/sh\nid\n"}, ".git")
                self.fails("file_move", {"source": "notes.txt", "destination": path}, ".git")
        for path in ("gitdir", "hooks", "chain", "repo_link"):
            with self.subTest(path=path):
                self.fails("file_browse", {"path": path}, ".git directory")
                self.fails("file_tree", {"path": path}, ".git directory")
                self.fails("search_in_code", {"pattern": "core", "addon": path}, ".git directory")
        # the links are not listed, .git content is never searched
        names = {e["name"] for e in self.ok("file_browse", {})["entries"]}
        self.assertFalse(names & {"gitdir", "cfg", "hooks", "repo_link", "absolute_cfg", "chain", "dangling_hook"})
        self.assertIn("my_addon", names)
        tree = {e["path"] for e in self.ok("file_tree", {})["entries"]}
        self.assertFalse(any(p.split("/")[0] in links for p in tree), tree)
        found = self.ok("search_in_code", {"pattern": "bare = false"})
        self.assertEqual(found["matches"], [])
        # the files are unchanged, no hook appeared
        self.assertEqual({p: self.disk(p) for p in before}, before)
        self.assertFalse(os.path.lexists(os.path.join(self.root, ".git/hooks/post-merge")))
        self.assertFalse(os.path.exists(os.path.join(self.root, ".git/hooks/post-checkout")))
        # an ordinary link inside the root still works
        self.assertIn("line 1", self.ok("file_read", {"path": "inside_link.py"})["content"])

    def test_tree(self):
        full = self.ok("file_tree", {})
        paths = {e["path"] for e in full["entries"]}
        self.assertIn("my_addon/models/partner.py", paths)
        self.assertIn("my_addon/static/logo.png", paths)
        self.assertNotIn("my_addon/__pycache__", paths)
        self.assertFalse(any(p.startswith("escape_dir") for p in paths))
        self.assertEqual(full["depth"], 3)
        shallow = self.ok("file_tree", {"depth": 1})
        self.assertEqual({e["path"] for e in shallow["entries"]},
                         {"my_addon", "other_addon", "notes.txt", "inside_link.py"})
        self.assertEqual(shallow["files"], 1)
        sub = self.ok("file_tree", {"path": "my_addon", "depth": 2})
        self.assertIn("my_addon/models/partner.py", {e["path"] for e in sub["entries"]})
        self.write_file("a/b/c/d/deep.txt", "deep\n")
        deep = {e["path"] for e in self.ok("file_tree", {"path": "a"})["entries"]}
        self.assertEqual(deep, {"a/b", "a/b/c", "a/b/c/d"})
        self.fails("file_tree", {"depth": 4}, "depth: Input should be less than or equal to 3")

    def test_search(self):
        data = self.ok("search_in_code", {"pattern": "LINE 1", "context_lines": 1})
        paths = [(m["path"], m["line"]) for m in data["matches"]]
        # case-insensitive by default; binaries and __pycache__ skipped; "line 1" also matches "line 10".."19"
        self.assertIn(("my_addon/models/partner.py", 1), paths)
        self.assertIn(("my_addon/models/partner.py", 19), paths)
        self.assertFalse(any("__pycache__" in p for p, _ in paths))
        self.assertFalse(any("secret" in p or "escape" in p for p, _ in paths))
        first = data["matches"][0]
        self.assertEqual((first["content"], first["before"], first["after"]), ("line 1", [], ["line 2"]))
        self.assertEqual(self.ok("search_in_code", {"pattern": "LINE 1", "case_sensitive": True})["count"], 0)
        regex = self.ok("search_in_code", {"pattern": r"^line [12]$", "regex": True, "addon": "my_addon"})
        self.assertEqual([m["line"] for m in regex["matches"]], [1, 2])
        scoped = self.ok("search_in_code", {"pattern": "record", "addon": "other_addon", "include": "*.xml"})
        self.assertEqual([m["path"] for m in scoped["matches"]], ["other_addon/data.xml"])
        self.assertEqual(self.ok("search_in_code", {"pattern": "record", "include": "*.py"})["count"], 0)
        limited = self.ok("search_in_code", {"pattern": "line", "addon": "my_addon", "max_results": 5})
        self.assertEqual((limited["count"], limited["truncated"]), (5, True))
        self.fails("search_in_code", {"pattern": "(unclosed", "regex": True}, "not a valid regular expression")
        self.fails("search_in_code", {"pattern": "x", "addon": "nope"}, "does not exist")

    def test_search_slow_regex_is_stopped(self):
        self.write_file("slow.txt", "a" * 40 + "!\n")
        result = self.call("search_in_code", {"pattern": "(a|aa)+$", "regex": True, "timeout_seconds": 2})
        self.assertTrue(result["isError"])
        self.assertRegex(result["content"][0]["text"], "too slow|timeout")

    # -- writing ------------------------------------------------------------------------------

    def test_write_full_content_and_dry_run(self):
        dry = self.ok("file_write", {"path": "notes.txt", "content": "bye\n", "dry_run": True})
        self.assertTrue(dry["dry_run"])
        self.assertIn("-hello\n+bye", dry["would_return"]["diff"])
        self.assertEqual(self.disk("notes.txt"), "hello\n")
        data = self.ok("file_write", {"path": "notes.txt", "content": "bye\n"})
        self.assertEqual((data["changed"], data["lines_added"], data["lines_removed"]), (True, 1, 1))
        self.assertEqual(self.disk("notes.txt"), "bye\n")
        self.fails("file_write", {"path": "notes.txt"}, "content is required")
        self.fails("file_write", {"path": "missing.txt", "content": "x"}, "does not exist")
        self.fails("file_write", {"path": "my_addon/static/logo.png", "content": "x"}, "binary file")
        self.fails("file_write", {"path": "my_addon", "content": "x"}, "not a regular file")

    def test_write_patch(self):
        patch_text = (
            "--- a/my_addon/models/partner.py\n+++ b/my_addon/models/partner.py\n"
            "@@ -2,3 +2,4 @@\n line 2\n-line 3\n+line three\n+line 3.5\n line 4\n"
            "@@ -29,2 +30,2 @@\n line 29\n-line 30\n+line thirty\n"
        )
        data = self.ok("file_write", {"path": "my_addon/models/partner.py", "mode": "patch", "patch": patch_text})
        self.assertEqual((data["hunks_applied"], data["lines_added"], data["lines_removed"]), (2, 3, 2))
        expected = PARTNER_PY.replace("line 3\n", "line three\nline 3.5\n", 1).replace("line 30\n", "line thirty\n")
        self.assertEqual(self.disk("my_addon/models/partner.py"), expected)
        # the same diff no longer matches: refused, nothing written
        text = self.fails("file_write", {"path": "my_addon/models/partner.py", "mode": "patch",
                                         "patch": patch_text}, "patch does not apply")
        self.assertIn("Nothing was written", text)
        self.assertEqual(self.disk("my_addon/models/partner.py"), expected)
        self.fails("file_write", {"path": "notes.txt", "mode": "patch", "patch": patch_text},
                   "the diff is for partner.py, not notes.txt")
        self.fails("file_write", {"path": "notes.txt", "mode": "patch", "patch": "not a diff"}, "no hunk found")
        self.fails("file_write", {"path": "notes.txt", "mode": "patch"}, "patch (a unified diff) is required")
        headerless = "@@ -1 +1 @@\n-hello\n+hello world\n"
        self.ok("file_write", {"path": "notes.txt", "mode": "patch", "patch": headerless})
        self.assertEqual(self.disk("notes.txt"), "hello world\n")

    def test_write_insert_at_line(self):
        self.ok("file_write", {"path": "notes.txt", "mode": "insert_at_line", "line": 1, "content": "first"})
        self.assertEqual(self.disk("notes.txt"), "first\nhello\n")
        self.ok("file_write", {"path": "notes.txt", "mode": "insert_at_line", "line": 3, "content": "last\n"})
        self.assertEqual(self.disk("notes.txt"), "first\nhello\nlast\n")
        self.fails("file_write", {"path": "notes.txt", "mode": "insert_at_line", "line": 9, "content": "x"},
                   "past the end")
        self.fails("file_write", {"path": "notes.txt", "mode": "insert_at_line", "content": "x"},
                   "content and line are required")

    def test_create(self):
        data = self.ok("file_create", {"path": "new_addon/models/thing.py", "content": "x = 1\n"})
        self.assertEqual(data["created_directories"], ["new_addon", "new_addon/models"])
        self.assertEqual(self.disk("new_addon/models/thing.py"), "x = 1\n")
        self.ok("file_create", {"path": "new_addon/static/img", "is_directory": True})
        self.assertTrue(os.path.isdir(os.path.join(self.root, "new_addon/static/img")))
        self.ok("file_create", {"path": "new_addon/static/img/a.bin", "content": base64.b64encode(b"\0\1").decode(),
                                "encoding": "base64"})
        with open(os.path.join(self.root, "new_addon/static/img/a.bin"), "rb") as fh:
            self.assertEqual(fh.read(), b"\0\1")
        self.fails("file_create", {"path": "notes.txt", "content": "x"}, "already exists")
        self.fails("file_create", {"path": "notes.txt/sub.txt", "content": "x"}, "is a file, not a directory")
        self.fails("file_create", {"path": "b.bin", "content": "***", "encoding": "base64"}, "not valid base64")
        dry = self.ok("file_create", {"path": "dry/x.txt", "content": "x", "dry_run": True})
        self.assertEqual(dry["would_return"]["created_directories"], ["dry"])
        self.assertFalse(os.path.exists(os.path.join(self.root, "dry")))

    def test_delete(self):
        text = self.fails("file_delete", {"path": "notes.txt"}, "confirmation required")
        self.assertIn("confirm: true", text)
        self.assertTrue(os.path.exists(os.path.join(self.root, "notes.txt")))
        dry = self.ok("file_delete", {"path": "notes.txt", "dry_run": True})
        self.assertEqual(dry["would_return"]["files_deleted"], 1)
        self.assertTrue(os.path.exists(os.path.join(self.root, "notes.txt")))
        self.ok("file_delete", {"path": "notes.txt", "confirm": True})
        self.assertFalse(os.path.exists(os.path.join(self.root, "notes.txt")))
        self.fails("file_delete", {"path": "other_addon", "confirm": True}, "pass recursive: true")
        data = self.ok("file_delete", {"path": "other_addon", "recursive": True, "confirm": True})
        self.assertEqual((data["files_deleted"], data["directories_deleted"]), (2, 1))
        self.assertFalse(os.path.exists(os.path.join(self.root, "other_addon")))
        # a symlink is removed itself, never its target
        self.ok("file_delete", {"path": "inside_link.py", "confirm": True})
        self.assertTrue(os.path.exists(os.path.join(self.root, "my_addon/models/partner.py")))
        self.fails("file_delete", {"path": "", "confirm": True}, "root itself cannot be deleted")
        os.makedirs(os.path.join(self.root, "repo/.git"))
        self.fails("file_delete", {"path": "repo", "recursive": True, "confirm": True}, "contains a git repository")

    def test_move(self):
        data = self.ok("file_move", {"source": "notes.txt", "destination": "docs/notes.md"})
        self.assertEqual(data["created_directories"], ["docs"])
        self.assertEqual(self.disk("docs/notes.md"), "hello\n")
        self.assertFalse(os.path.exists(os.path.join(self.root, "notes.txt")))
        self.write_file("other.txt", "other\n")
        self.fails("file_move", {"source": "other.txt", "destination": "docs/notes.md"}, "already exists")
        self.ok("file_move", {"source": "other.txt", "destination": "docs/notes.md", "overwrite": True})
        self.assertEqual(self.disk("docs/notes.md"), "other\n")
        self.ok("file_move", {"source": "other_addon", "destination": "renamed_addon"})
        self.assertTrue(os.path.isfile(os.path.join(self.root, "renamed_addon/data.xml")))
        self.fails("file_move", {"source": "my_addon", "destination": "my_addon/models/inner"}, "into itself")
        self.fails("file_move", {"source": "docs/notes.md", "destination": "../notes.md"}, "contains '..'")
        self.fails("file_move", {"source": "missing", "destination": "x"}, "does not exist")
        dry = self.ok("file_move", {"source": "docs/notes.md", "destination": "n.md", "dry_run": True})
        self.assertEqual(dry["would_return"]["destination"], "n.md")
        self.assertTrue(os.path.exists(os.path.join(self.root, "docs/notes.md")))
