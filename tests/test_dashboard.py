"""The dashboard in a real headless browser (Debian's chromium driven by Playwright) against a live gateway."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from allocator.base import Policy
from allocator.cascade import CascadingAdaptive
from oracle.outcomes import Question
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from service.simulator import Simulator, create_simulator_app
from service.tenants import key_hash

ARTIFACTS = Path(os.environ.get("APPORTION_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
# Flags for a sandboxed root with no network: without them Chromium keeps dialling Google's services.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def keyed_gateway(policy: Policy, backend: str, tmp_path: Path) -> Iterator[str]:
    entries = [
        {"tenant": "search", "key_sha256": key_hash("key-search"), "budget": 100_000},
        {"tenant": "tutor", "key_sha256": key_hash("key-tutor"), "budget": None},
    ]
    (tmp_path / "tenants.json").write_text(json.dumps(entries))
    settings = Settings(model=Path("."), backends=[backend], tenants=tmp_path / "tenants.json", admin_key="key-admin")
    with ServerThread(create_app(settings, policy=policy)) as url:
        yield url


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def use_key(page: Page, key: str) -> None:
    page.fill("#key", key)
    page.click("#key-form button")


def test_after_traffic_the_charts_show_it_and_the_admin_changes_the_target(
    browser: Browser,
    keyed_gateway: str,
    questions: list[Question],
) -> None:
    for question in questions[:30]:
        reply = httpx.post(
            keyed_gateway + "/v1/solve",
            json={"question": question.question},
            headers={"Authorization": "Bearer key-search"},
        )
        assert reply.status_code == 200
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    errors = watch_errors(page)
    page.goto(keyed_gateway + "/dashboard")
    page.wait_for_selector("text=needs an API key")
    use_key(page, "key-admin")
    page.wait_for_function("window.dashboard.polls > 0")
    page.wait_for_function("window.dashboard.charts['chart-budget'].data[0].length >= 3", timeout=10_000)
    allocated = page.evaluate("window.dashboard.charts['chart-samples'].data[1].reduce((a, b) => a + b, 0)")
    agreed = page.evaluate("window.dashboard.charts['chart-agreement'].data[1].reduce((a, b) => a + b, 0)")
    assert allocated == agreed == 30
    assert page.inner_text("#queries") == "30"
    assert "search" in page.inner_text("#tenants") and "no limit" in page.inner_text("#tenants")
    assert page.is_visible("#target-panel") and not page.is_visible("#read-only")
    assert not page.is_visible("#escalated-figure"), "one model: no escalation to chart"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.fill("#new-target", "2.5")
    page.click("#target-form button")
    page.wait_for_selector("text=target set to 2.5")
    budget = httpx.get(keyed_gateway + "/v1/budget", headers={"Authorization": "Bearer key-admin"}).json()
    assert budget["target"] == 2.5
    page.wait_for_function("document.getElementById('target').textContent === '2.50'")
    assert errors == []


def test_a_tenant_sees_a_read_only_page_with_its_own_spend(browser: Browser, keyed_gateway: str) -> None:
    httpx.post(
        keyed_gateway + "/v1/solve",
        json={"question": "Ava has 2 coins. How many coins?"},
        headers={"Authorization": "Bearer key-search"},
    )
    page = browser.new_page()
    errors = watch_errors(page)
    page.goto(keyed_gateway + "/dashboard")
    use_key(page, "key-tutor")
    page.wait_for_function("window.dashboard.polls > 0")
    assert page.is_visible("#read-only") and not page.is_visible("#target-panel")
    assert "search" not in page.inner_text("#tenants")
    assert "tutor" in page.inner_text("#status")
    assert errors == []


def test_every_grafana_panel_queries_metrics_the_gateway_exports(
    policy: Policy,
    backend: str,
) -> None:
    board = json.loads((Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "apportion.json").read_text())
    expressions = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    settings = Settings(model=Path("."), backends=[backend])
    with ServerThread(create_app(settings, policy=policy)) as url:
        httpx.post(url + "/v1/solve", json={"question": "Ava has 2 coins. How many coins?"})
        exported = httpx.get(url + "/metrics").text
    series = {line.split("{")[0].split(" ")[0] for line in exported.splitlines() if not line.startswith("#")}
    labels = set(re.findall(r'(\w+)="', exported)) | {"le"}
    for expression in expressions:
        for metric in re.findall(r"\bapportion_\w+", expression):
            assert metric in series, f"{metric} in the Grafana dashboard is not exported"
        for grouped in re.findall(r"by \(([^)]*)\)", expression):
            assert {label.strip() for label in grouped.split(",")} <= labels, expression
    assert len(board["panels"]) >= 10


def test_a_cascade_shows_its_spend_by_model_and_the_share_escalated(browser: Browser) -> None:
    from tests.test_serve_fleet import HELD_OUT, LARGE, SMALL, outcomes

    cascade = CascadingAdaptive().fit(outcomes("samples"), 8.0)
    simulator = ServerThread(create_simulator_app(Simulator.fleet({"small": SMALL, "large": LARGE})))
    with simulator as backend:
        settings = Settings(model=Path("."), backends=[backend + "/v1"])
        with ServerThread(create_app(settings, policy=cascade)) as url:
            escalated = 0
            for question in HELD_OUT:
                body = {"model": "apportion", "messages": [{"role": "user", "content": question}]}
                escalated += len(httpx.post(url + "/v1/chat/completions", json=body).json()["apportion"]["models"]) > 1
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            errors = watch_errors(page)
            page.goto(url + "/dashboard")
            page.wait_for_function("window.dashboard.charts['chart-models']?.data[0].length >= 2", timeout=10_000)
            series = page.evaluate("window.dashboard.charts['chart-models'].series.map((s) => s.label)")
            shares = page.evaluate("window.dashboard.charts['chart-escalated'].data[1].filter((v) => v !== null)")
            assert page.is_visible("#escalated-figure")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-cascade.png"), full_page=True)
            models, figures = page.inner_text("#models"), page.inner_text(".figures")
            budget = httpx.get(url + "/v1/budget").json()
    assert escalated > 0 and series[1:] == ["large", "small"], "one line per model"
    assert shares and all(0 <= share <= 1 for share in shares) and max(shares) > 0
    large = next(row for row in budget["models"] if row["model"] == "large")
    assert f"large\t20\t{large['samples']}" in models and f"{large['cost']:,.0f}" in models
    assert "cost units (samples × price) / query" in figures
    assert errors == []
