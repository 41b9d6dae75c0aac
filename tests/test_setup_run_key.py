"""setup/run shows a new API key on the terminal only: never in its output when that is a file or a pipe
(a log: setup/run >odoo.log 2>&1, nohup, systemd, docker), and creates none without a terminal.

Runs setup/run's own functions (key_terminal, print_connection_info) under a pseudo-terminal (script) and
without a controlling terminal (setsid); no server needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP_RUN = Path(__file__).resolve().parent.parent / "setup" / "run"
SECRET = "ocore_0123456789_" + "S3cr3t" * 6

pytestmark = pytest.mark.skipif(not (shutil.which("script") and shutil.which("setsid")),
                                reason="needs util-linux's script and setsid")


def functions():
    text = SETUP_RUN.read_text()
    found = [re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", text, re.M | re.S) for name in
             ("key_terminal", "print_connection_info")]
    assert all(found), "setup/run lost key_terminal() or print_connection_info()"
    return "".join(m.group(0) for m in found)


@pytest.fixture
def driver(tmp_path):
    script = tmp_path / "drive.sh"
    script.write_text(functions() + f"""
OCORE_HTTP_INTERFACE=127.0.0.1 OCORE_HTTP_PORT=8069 OCORE_DB=ocore make_key=1
OCORE_KEY_TTY=$(key_terminal)
OCORE_KEY=""
[[ -n $OCORE_KEY_TTY ]] && OCORE_KEY={SECRET}  # setup/run creates the key only when there is a terminal
print_connection_info
""")
    return script


def run(command, tmp_path):
    return subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=30,  # noqa: S602
                          stdin=subprocess.DEVNULL, check=False)


def test_stdout_is_the_terminal(driver, tmp_path):
    result = run(f"script -qec 'bash {driver}' /dev/null", tmp_path)
    assert result.stdout.count(SECRET) == 3  # the key and the two client configurations


def test_stdout_is_a_file_the_key_goes_to_the_terminal(driver, tmp_path):
    log, terminal = tmp_path / "odoo.log", tmp_path / "terminal.txt"
    run(f"script -qec 'bash {driver} > {log} 2>&1' {terminal}", tmp_path)
    assert SECRET not in log.read_text()
    assert "written on the terminal only" in log.read_text()
    assert "/ocore/mcp/stream" in log.read_text()
    assert terminal.read_text().count(SECRET) == 3


def test_no_terminal_no_key(driver, tmp_path):
    log = tmp_path / "odoo.log"
    run(f"setsid bash {driver} > {log} 2>&1", tmp_path)
    assert SECRET not in log.read_text()
    assert "No key created: no terminal" in log.read_text()
