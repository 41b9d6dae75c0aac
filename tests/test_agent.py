"""The host agent for real: an Odoo server started, stopped and restarted by the process driver, its log
tailed, filtered and followed, its database backed up and restored; every request signed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, cases, healthy, odoo_instance, signing
from harness import Admin, create_database, drop_database, free_port, new_db_name

pytestmark = pytest.mark.timeout(900)
CASES = Path(__file__).parent / "adversarial" / "agent_cases.jsonl"


@pytest.fixture(scope="module")
def agent(request, odoo_setup):
    db = new_db_name()
    port = free_port()
    create_database(odoo_setup, db, ("ocore_mcp",))
    broken = {"name": "broken", "driver": "process", "database": f"{db}_missing", "command": ["true"]}
    agent = AgentProcess(odoo_setup, [odoo_instance(odoo_setup, "proc1", db, port), broken])
    try:
        agent.start()
        agent.db, agent.port = db, port
        yield agent
    finally:
        agent.call("POST", "/v1/instances/proc1/stop") if agent.proc and agent.proc.poll() is None else None
        agent.stop()
        if not request.config.getoption("--keep-db"):
            drop_database(odoo_setup, db)


def partners(port, db, name):
    admin = Admin(f"http://127.0.0.1:{port}", db)
    return admin.call("res.partner", "search_count", [("name", "=", name)])


def test_start_stop_restart_status(agent):
    assert agent.call("GET", "/v1/instances/proc1")["status"] == "stopped"
    row = agent.call("POST", "/v1/instances/proc1/start")
    assert row["status"] == "running" and row["id"] and healthy(agent.port)
    pid = row["id"]
    row = agent.call("POST", "/v1/instances/proc1/restart")
    assert row["status"] == "running" and row["id"] != pid and healthy(agent.port)
    row = agent.call("POST", "/v1/instances/proc1/stop")
    assert row["status"] == "stopped" and not healthy(agent.port)
    assert agent.call("POST", "/v1/instances/proc1/start")["status"] == "running"
    status = agent.call("GET", "/v1/status")
    assert status["disk"]["free"] > 0 and {i["name"] for i in status["instances"]} == {"proc1", "broken"}
    listed = {i["name"]: i["status"] for i in agent.call("GET", "/v1/instances")["instances"]}
    assert listed == {"proc1": "running", "broken": "stopped"}
    disk = agent.call("GET", "/v1/disk")
    assert disk["total"] >= disk["free"] > 0 and disk["backups_bytes"] >= 0
    assert agent.call("GET", "/v1/instances/nope", expect=404)


def test_logs_tail_grep_follow(agent):
    agent.call("POST", "/v1/instances/proc1/start")
    lines = agent.call("GET", "/v1/instances/proc1/logs?lines=5")["lines"]
    assert 0 < len(lines) <= 5
    healthy(agent.port)
    time.sleep(0.5)
    found = agent.call("GET", "/v1/instances/proc1/logs?lines=50&grep=web/health")["lines"]
    assert found and all("web/health" in line for line in found)

    def ping():
        for _ in range(8):
            time.sleep(0.3)
            healthy(agent.port)

    thread = threading.Thread(target=ping)
    thread.start()
    started = time.monotonic()
    body = agent.call("GET", "/v1/instances/proc1/logs?follow=1&seconds=3&grep=health")
    thread.join()
    streamed = body.decode().splitlines()
    assert streamed and all("health" in line for line in streamed)
    assert 2.5 < time.monotonic() - started < 15


def test_backup_then_restore_with_snapshot(agent):
    agent.call("POST", "/v1/instances/proc1/start")
    admin = Admin(f"http://127.0.0.1:{agent.port}", agent.db)
    admin.create("res.partner", {"name": "before the backup"})
    backup = agent.call("POST", "/v1/instances/proc1/backup", {"format": "custom"})
    assert backup["name"].endswith(".dump") and backup["size"] > 0
    admin.create("res.partner", {"name": "after the backup"})
    assert partners(agent.port, agent.db, "after the backup") == 1
    result = agent.call("POST", "/v1/instances/proc1/restore", {"backup": backup["name"]})
    assert result["restored"] and result["restarted"] and result["snapshot"].endswith("-pre-restore.dump")
    assert healthy(agent.port)
    assert partners(agent.port, agent.db, "before the backup") == 1
    assert partners(agent.port, agent.db, "after the backup") == 0, "the restored data, not the live one"
    names = [b["name"] for b in agent.call("GET", "/v1/instances/proc1/backups")["backups"]]
    assert backup["name"] in names and result["snapshot"] in names
    assert agent.call("GET", "/v1/instances/proc1/backups?max_age_days=0.0000001")["backups"] == []


def test_restore_of_a_broken_file_restarts_on_the_snapshot(agent):
    agent.call("POST", "/v1/instances/proc1/start")
    Admin(f"http://127.0.0.1:{agent.port}", agent.db).create("res.partner", {"name": "kept through a bad restore"})
    bad = Path(agent.config["backup_dir"]) / "proc1" / "proc1-corrupt.dump"
    bad.write_bytes(b"PGDMP not really a dump")
    result = agent.call("POST", "/v1/instances/proc1/restore", {"backup": bad.name}, expect=500)
    assert not result["restored"] and result["error"] and result["restarted"]
    assert result["rolled_back_to_snapshot"]
    assert healthy(agent.port)
    assert partners(agent.port, agent.db, "kept through a bad restore") == 1


def test_restore_aborts_when_the_snapshot_fails(agent):
    backup_dir = Path(agent.config["backup_dir"]) / "broken"
    backup_dir.mkdir(parents=True, exist_ok=True)
    (backup_dir / "broken-1.dump").write_bytes(b"x")
    result = agent.call("POST", "/v1/instances/broken/restore", {"backup": "broken-1.dump"}, expect=400)
    assert "pre-restore snapshot failed" in result["error"] and "nothing was changed" in result["error"]
    for name in ("../proc1/x.dump", "/etc/passwd", ".hidden.dump", "proc1.txt"):
        assert "error" in agent.call("POST", "/v1/instances/proc1/restore", {"backup": name}, expect=400)


@pytest.mark.parametrize("case", cases(CASES), ids=lambda c: c["id"])
def test_forged_replayed_and_stale_requests_are_refused(agent, case):
    method, path = case.get("method", "POST"), case.get("path", "/v1/instances/proc1/stop")
    body = json.dumps(case.get("body", {})).encode()
    sign_method, sign_path = case.get("sign_method", method), case.get("sign_path", path)
    sign_body = json.dumps(case["sign_body"]).encode() if "sign_body" in case else body
    secret = case.get("secret", agent.secret)
    now = int(time.time()) + int(case.get("skew", 0))
    headers = signing.sign(secret, sign_method, sign_path, sign_body, timestamp=now, nonce=case.get("nonce"))
    for name in case.get("drop", []):
        headers.pop(name)
    headers.update(case.get("headers", {}))
    if case.get("replay"):
        ok_status, _ = agent.raw("GET", "/v1/status", headers=signing.sign(agent.secret, "GET", "/v1/status", b"",
                                                                         nonce=headers[signing.HEADER_NONCE]),
                                 sign=False)
        assert ok_status == 200
        headers = signing.sign(agent.secret, "GET", "/v1/status", b"", nonce=headers[signing.HEADER_NONCE])
        method, path, body = "GET", "/v1/status", b""
    before = agent.call("GET", "/v1/instances/proc1")["status"]
    status, data = agent.raw(method, path, body, headers=headers, sign=False)
    assert status == 401, (status, data)
    assert case["expect"] in json.loads(data)["error"]
    assert agent.call("GET", "/v1/instances/proc1")["status"] == before, "nothing was done"


# -- the Docker driver, against a real dockerd ---------------------------------------------------


@pytest.fixture(scope="module")
def docker_agent(odoo_setup):
    from dockerd import Dockerd

    daemon = Dockerd().start()
    try:
        image = daemon.import_busybox()
        port = free_port()
        script = (f"echo container started; httpd -f -p 127.0.0.1:{port} -h /www & "
                  "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done")
        inst = {"name": "box", "driver": "docker", "database": "unused", "image": image,
                "command": ["sh", "-c", script], "network_mode": "host",
                "health_url": f"http://127.0.0.1:{port}/web/health"}
        agent = AgentProcess(odoo_setup, [inst], name="docker-agent", docker={"base_url": daemon.base_url})
        agent.start()
        agent.daemon, agent.port = daemon, port
        try:
            yield agent
        finally:
            agent.stop()
    finally:
        daemon.stop()
    assert not daemon.mounts(), "dockerd's mounts (the nsfs of exec/netns/default) are unmounted when it stops"


def test_docker_driver_start_stop_restart_logs(docker_agent):
    agent = docker_agent
    assert agent.call("GET", "/v1/instances/box")["status"] == "stopped"
    row = agent.call("POST", "/v1/instances/box/start")
    assert row["status"] == "running" and row["id"] and healthy(agent.port)
    container = agent.daemon.client.containers.get(row["id"])
    assert container.image.tags == ["ocore-e2e-busybox:1"]
    time.sleep(1)
    lines = agent.call("GET", "/v1/instances/box/logs?lines=3")["lines"]
    assert len(lines) == 3 and all(line.startswith("tick") for line in lines)
    assert agent.call("GET", "/v1/instances/box/logs?lines=50&grep=started")["lines"] == ["container started"]
    streamed = agent.call("GET", "/v1/instances/box/logs?follow=1&seconds=2&grep=tick").decode().splitlines()
    assert len(streamed) >= 3 and all(line.startswith("tick") for line in streamed)
    row = agent.call("POST", "/v1/instances/box/stop")
    assert row["status"] == "stopped" and not healthy(agent.port)
    assert agent.daemon.client.containers.get(row["id"] or container.id).status == "exited"
    row = agent.call("POST", "/v1/instances/box/restart")
    assert row["status"] == "running" and healthy(agent.port)
    agent.call("POST", "/v1/instances/box/stop")
