"""Access: keys stored only as hashes, tenants kept apart, and no prompt or answer text in the logs by default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from allocator.base import Policy
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from service.tenants import Tenants, key_hash
from tests.test_gateway import assert_error

MARKER = "zebra-quokka-4711"


@pytest.mark.parametrize("log_text", [False, True])
def test_prompts_and_answers_stay_out_of_the_logs_unless_asked(
    policy: Policy, backend: str, caplog: pytest.LogCaptureFixture, log_text: bool
) -> None:
    settings = Settings(model=Path("."), backends=[backend], log_text=log_text)
    with caplog.at_level(logging.DEBUG), ServerThread(create_app(settings, policy=policy)) as url:
        reply = httpx.post(url + "/v1/solve", json={"question": f"{MARKER}: what is 2 + 2?"})
        assert reply.status_code == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert (MARKER in logged) is log_text


def test_the_tenants_file_holds_hashes_and_a_near_miss_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps([{"tenant": "search", "key_sha256": key_hash("apk-secret"), "budget": None}]))
    assert "apk-secret" not in path.read_text()
    tenants = Tenants.read(path, admin_key="apk-admin")
    assert tenants.identify("Bearer apk-secret") is not None
    for wrong in ("Bearer apk-secreT", "Bearer apk-secre", "Bearer " + key_hash("apk-secret"), "Bearer", "", None):
        assert tenants.identify(wrong) is None, wrong
    assert tenants.identify("Bearer apk-admin").admin  # type: ignore[union-attr]
    assert all(len(digest) == 64 for digest in tenants.by_hash), "only hashes are kept in memory too"


def test_a_tenant_cannot_read_others_spend_nor_change_the_target(policy: Policy, backend: str, tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(
        json.dumps([{"tenant": name, "key_sha256": key_hash(f"k-{name}"), "budget": 50} for name in ("alpha", "beta")])
    )
    settings = Settings(model=Path("."), backends=[backend], tenants=path, admin_key="k-admin")
    with ServerThread(create_app(settings, policy=policy)) as url:
        alpha = {"Authorization": "Bearer k-alpha"}
        httpx.post(url + "/v1/solve", json={"question": "Ava has 2 coins."}, headers={"Authorization": "Bearer k-beta"})
        for path_ in ("/v1/budget", "/v1/dashboard"):
            body = httpx.get(url + path_, headers=alpha).text
            assert "beta" not in body, path_
        assert_error(httpx.put(url + "/v1/budget/target", json={"target": 9}, headers=alpha), 403)
        assert_error(httpx.get(url + "/v1/dashboard"), 401)
