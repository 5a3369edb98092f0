"""The container and Kubernetes manifests, checked as far as a machine without a container
engine allows: Kubernetes schemas (offline), probes and ports agreeing with the Dockerfile,
non-root, and every Dockerfile command at least well-formed."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def deployment() -> dict:
    return yaml.safe_load((DEPLOY / "deployment.yaml").read_text())


def test_kubernetes_manifests_pass_the_kubernetes_schemas():
    exe = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    assert exe, "kubernetes-validate missing: install the project with its [test] extra"
    done = subprocess.run([exe, "--strict", *map(str, MANIFESTS)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_deployment_runs_two_non_root_replicas_with_probes_on_the_monitor_port():
    spec = deployment()["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["monitor"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    entrypoint = json.loads(dict(dockerfile_instructions())["ENTRYPOINT"])
    assert entrypoint[entrypoint.index("--monitor") + 1] == str(port)
    env = {e["name"]: e for e in container["env"]}
    assert env["AJC_SCHEDULER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    mount = container["volumeMounts"][0]["mountPath"]
    assert mount == env["XDG_CONFIG_HOME"]["value"] + "/nats/context"
    assert pod["volumes"][0]["secret"]["secretName"] == "ajc-gitops-nats"


def test_dockerfile_is_non_root_with_a_healthcheck_and_the_scheduler_entrypoint():
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    entrypoint = json.loads(dict(final_stage)["ENTRYPOINT"])
    assert entrypoint[:2] == ["ajc-gitops", "scheduler"]
    healthcheck = dict(final_stage)["HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    ast.parse(command[2])
    port = entrypoint[entrypoint.index("--monitor") + 1]
    assert f"127.0.0.1:{port}/healthz" in command[2]


@pytest.mark.parametrize("command", [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"])
def test_dockerfile_run_commands_are_valid_shell(command):
    done = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_dockerfile_copies_everything_the_wheel_needs(tmp_path):
    """Replays the build stage: the files it COPYs are enough to build a wheel with the schema."""
    copied = [
        re.split(r"\s+", rest)
        for keyword, rest in dockerfile_instructions()
        if keyword == "COPY" and "--from" not in rest
    ]
    src = tmp_path / "src"
    src.mkdir()
    for parts in copied:
        for name in parts[:-1]:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, src / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        schema = json.loads(archive.read("ajc_gitops/schema/schedule.schema.json"))
    assert schema["title"] == "ajc-gitops schedule manifest"


def test_container_and_deployment_flags_exist_on_the_scheduler_command():
    done = subprocess.run(
        [sys.executable, "-m", "ajc_gitops", "scheduler", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    entrypoint = json.loads(dict(dockerfile_instructions())["ENTRYPOINT"])
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    flags = [arg for arg in entrypoint[2:] + container["args"] if arg.startswith("--")]
    assert flags == ["--monitor", "--log-format", "--context"]
    for flag in flags:
        assert flag in done.stdout, f"{flag} missing from: {done.stdout}"
