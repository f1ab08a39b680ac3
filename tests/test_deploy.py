"""The container files and the Kubernetes manifests: what can be checked without Docker.

Docker cannot run here, so: the Dockerfile's command is the README's and its
files exist; the compose file parses and everything it mounts or builds
exists; the Kubernetes manifests pass the Kubernetes OpenAPI schemas
(kubernetes-validate, strict) and refer to each other correctly. Every
gateway config shipped in these files validates as the gateway would load it.
"""

from __future__ import annotations

import json
import re
import shlex

import kubernetes_validate
import pytest
import yaml

from gateway.config import parse_config
from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines()  # type: ignore[misc]
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_runs_the_readme_command_as_a_non_root_user():
    steps = dockerfile()
    instructions = [name for name, _ in steps]
    args = dict(reversed(steps))  # the first of each instruction
    assert re.fullmatch(r"python:3\.1\d-slim", args["FROM"])
    command = json.loads(dict(steps)["ENTRYPOINT"]) + json.loads(dict(steps)["CMD"])
    readme = (ROOT / "README.md").read_text()
    assert "gateway serve" in readme
    assert command == shlex.split("gateway serve")
    assert dict(steps)["USER"] not in ("root", "0")
    assert "/healthz" in dict(steps)["HEALTHCHECK"]
    # the dependencies' layer comes before the source is copied
    copies = [a for n, a in steps if n == "COPY"]
    assert copies[0].split()[0] == "setup.cfg"
    first_pip = next(i for i, (n, a) in enumerate(steps) if n == "RUN" and "pip install" in a)
    assert first_pip < instructions.index("COPY", instructions.index("COPY") + 1)
    for copy in copies:
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), source


def test_the_compose_file_parses_and_everything_it_names_exists():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "backends", "gateway", "nginx"}
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert (ROOT / services["gateway"]["build"] / "Dockerfile").exists()
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists(), host
        for dependency in service.get("depends_on", []):
            assert dependency in services
    # nginx is deploy/nginx.conf with the gateway's address swapped in: the
    # lines it rewrites must be in the file
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    command = " ".join(services["nginx"]["command"])
    for pattern in re.findall(r"-e '?s[/#]([^/#]+)[/#]", command):
        assert pattern.replace("\\", "") in nginx_conf, pattern
    # the replicas share Redis, and believe nginx's X-Forwarded-For
    config = parse_config(yaml.safe_load((ROOT / "deploy/compose/gateway.yaml").read_text()))
    assert config.storage == "redis://redis:6379/0" and config.trusted_proxies == 1
    hosts = {url.split("//")[1].split(":")[0] for s in config.services.values() for url in s.upstream}
    assert hosts == {"backends"}


def manifests() -> list[dict]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: f"{m['kind']}/{m['metadata']['name']}")
def test_each_manifest_passes_the_kubernetes_schema(manifest):
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


def test_the_schema_check_catches_a_mistake():
    broken = next(m for m in manifests() if m["kind"] == "Deployment")
    broken = json.loads(json.dumps(broken))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_manifests_refer_to_each_other():
    by_kind: dict[str, dict[str, dict]] = {}
    for manifest in manifests():
        by_kind.setdefault(manifest["kind"], {})[manifest["metadata"]["name"]] = manifest
    deployment = by_kind["Deployment"]["gateway"]
    spec = deployment["spec"]
    pod = spec["template"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["cpu"]
    workers = next(e for e in container["env"] if e["name"] == "GATEWAY_WORKERS")
    assert workers["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    # the config comes from the ConfigMap, mounted where GATEWAY_CONFIG points
    volume = next(v for v in pod["spec"]["volumes"] if "configMap" in v)
    config_map = by_kind["ConfigMap"][volume["configMap"]["name"]]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    config_path = next(e["value"] for e in container["env"] if e["name"] == "GATEWAY_CONFIG")
    assert config_path.rpartition("/")[0] == mount["mountPath"]
    config = parse_config(yaml.safe_load(config_map["data"][config_path.rpartition("/")[2]]))
    # Redis is the shared store, and the manifests provide it
    redis_host = config.storage.split("//")[1].split(":")[0]
    assert redis_host in by_kind["Service"]
    # the Service sends traffic to the gateway's pods, on the port they listen on
    service = by_kind["Service"]["gateway"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    target = service["spec"]["ports"][0]["targetPort"]
    assert target in port_names or target in port_names.values()
    bind_port = next(e["value"] for e in container["env"] if e["name"] == "GATEWAY_BIND")
    assert bind_port.endswith(f":{port_names['http']}")
    hpa = by_kind["HorizontalPodAutoscaler"]["gateway"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "gateway"}
    assert hpa["spec"]["minReplicas"] == spec["replicas"]
