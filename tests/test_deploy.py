"""Deployment files checked offline (no Docker engine here): the compose file against
the compose-spec schema, the Grafana dashboard against the metrics we export, the
provisioning and Prometheus files against the compose file that mounts them."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from media_server.metrics import REGISTRY

REPO = Path(__file__).resolve().parent.parent
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


async def validate(schema: str, *files: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        CHECK_JSONSCHEMA, "--builtin-schema", schema, *map(str, files),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_compose_file_is_valid_compose_spec(tmp_path: Path) -> None:
    status, output = await validate("vendor.compose-spec", REPO / "docker-compose.yml")
    assert status == 0, output
    broken = tmp_path / "docker-compose.yml"  # the check itself can fail
    broken.write_text((REPO / "docker-compose.yml").read_text().replace(
        "restart: unless-stopped", "restart: [unless-stopped]", 1))
    status, output = await validate("vendor.compose-spec", broken)
    assert status != 0, output


def test_compose_runs_the_whole_stack_with_health_checks_and_media_ports() -> None:
    compose = load_yaml(REPO / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"app", "postgres", "redis", "coturn", "prometheus", "grafana"}
    for name in ("app", "postgres", "redis", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    app = services["app"]
    low, high = map(int, app["sysctls"]["net.ipv4.ip_local_port_range"].split())
    assert f"{low}-{high}:{low}-{high}/udp" in app["ports"]  # the media's UDP range
    env = app["environment"]
    assert env["LIVE_INTERPRETER_REDIS_URL"].startswith("redis://redis:")
    assert "@postgres:5432/" in env["LIVE_INTERPRETER_DATABASE_URL"]
    for volume in services["grafana"]["volumes"] + services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).exists(), source  # what is mounted is in the repo
    prometheus = load_yaml(REPO / "deploy/prometheus/prometheus.yml")
    metrics_port = env["LIVE_INTERPRETER_METRICS_PORT"]
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"app:{metrics_port}"]
    assert not any(metrics_port in str(port) for port in app["ports"])  # not published


def _exported_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_the_dashboard_shows_only_metrics_we_export() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/live-interpreter.json")
                           .read_text())
    datasources = load_yaml(REPO / "deploy/grafana/provisioning/datasources/prometheus.yml")
    uid = datasources["datasources"][0]["uid"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 20
    used = {name for expr in exprs for name in re.findall(r"live_interpreter_\w+", expr)}
    assert not used - _exported_names(), used - _exported_names()
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("caption", "load", "fallback", "cache hit rate", "queues"):
        assert topic in titles, topic
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"] if "targets" in p)
    provider = load_yaml(REPO / "deploy/grafana/provisioning/dashboards/live-interpreter.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_image_is_multi_stage_non_root_and_ready_at_start() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "whisper_base_dir" in dockerfile  # weights prepared at build time
    assert "HEALTHCHECK" in dockerfile


K8S = REPO / "deploy" / "k8s"
KUBERNETES_VALIDATE = str(Path(sys.executable).parent / "kubernetes-validate")


async def kubernetes_validate(*files: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        KUBERNETES_VALIDATE, "--strict", "-k", "1.33.0", *map(str, files),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_kubernetes_manifests_validate(tmp_path: Path) -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = [K8S / name for name in kustomization["resources"]]
    status, output = await kubernetes_validate(*manifests)
    assert status == 0, output
    assert output.count("passed") == 11, output
    status, output = await kubernetes_validate(K8S / "secret.example.yaml")  # not applied
    assert status == 0 and output.count("passed") == 1, output
    broken = tmp_path / "media.yaml"  # the check itself can fail
    broken.write_text((K8S / "media.yaml").read_text().replace("hostNetwork: true",
                                                               "hostNetwork: yes-please"))
    status, output = await kubernetes_validate(broken)
    assert status != 0, output
    generated = kustomization["configMapGenerator"][0]["files"][0].split("=", 1)[1]
    assert (K8S / generated).resolve() == REPO / "turn" / "turnserver.conf.template"


def test_kubernetes_deployment_drains_probes_and_scales() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d
            for name in ("signaling.yaml", "media.yaml", "coturn.yaml")
            for d in YAML(typ="safe").load_all((K8S / name).read_text())}
    media = docs[("Deployment", "media")]["spec"]["template"]["spec"]
    assert media["hostNetwork"] is True  # UDP straight to the node, any port
    container = media["containers"][0]
    assert container["args"] == ["media"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = next(YAML(typ="safe").load_all((K8S / "config.yaml").read_text()))  # ConfigMap
    drain_s = float(config["data"]["LIVE_INTERPRETER_DRAIN_TIMEOUT_S"])
    assert media["terminationGracePeriodSeconds"] > drain_s  # drained, not killed
    signaling = docs[("Deployment", "signaling")]["spec"]["template"]["spec"]
    assert signaling["containers"][0]["args"] == ["signaling"]
    assert ("Ingress", "signaling") in docs and ("Service", "signaling") in docs
    for name in ("signaling", "media"):
        assert ("PodDisruptionBudget", name) in docs
        assert ("HorizontalPodAutoscaler", name) in docs
    metrics = docs[("HorizontalPodAutoscaler", "media")]["spec"]["metrics"]
    assert {m["type"] for m in metrics} == {"Resource", "Pods"}
    assert metrics[1]["pods"]["metric"]["name"] in _exported_names()
