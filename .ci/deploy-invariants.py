"""What the schemas cannot say about deploy/: run by .ci/deploy-checks.

    deploy-invariants.py <rendered sqlite manifests> <rendered postgres manifests> <caddy JSON>

- every variable the deploy files set for the receiver is one the service reads
  (src/config/), so a typo cannot silently fall back to a default;
- SQLite on Kubernetes is one replica with the Recreate strategy, PostgreSQL several with
  RollingUpdate and a PodDisruptionBudget; probes are wired to /healthz and /readyz;
- the proxy only proxies: no rewriting, no header changes, no request buffering.
"""

import json
import re
import sys
from pathlib import Path

import yaml

# Read by tracing's EnvFilter, not by src/config/.
READ_ELSEWHERE = {"RUST_LOG"}
RECEIVER_IMAGE = "sinch-webhooks"
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def known_variables():
    config = "".join(path.read_text() for path in sorted(Path("src/config").glob("*.rs")))
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config)) | READ_ELSEWHERE


def env_file_names(path):
    """NAME=... lines of an env file, commented-out ones included."""
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", Path(path).read_text(), re.M)
    return {(name, path) for name in names}


def documents(path):
    return [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]


def deployment(docs, path):
    found = [doc for doc in docs if doc["kind"] == "Deployment"]
    check(len(found) == 1, f"{path}: expected one Deployment, found {len(found)}")
    return found[0]


def receiver_env(docs, path):
    """Variables a rendered kustomization gives the receiver container."""
    config_maps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    names = set()
    for container in deployment(docs, path)["spec"]["template"]["spec"]["containers"]:
        names |= {(env["name"], path) for env in container.get("env", [])}
        for source in container.get("envFrom", []):
            config_map = config_maps.get(source.get("configMapRef", {}).get("name"))
            if config_map:
                names |= {(key, path) for key in config_map.get("data", {})}
    return names


def check_probes(docs, path):
    for container in deployment(docs, path)["spec"]["template"]["spec"]["containers"]:
        for probe, expected in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            got = container.get(probe, {}).get("httpGet", {}).get("path")
            check(got == expected, f"{path}: {probe} asks {got}, not {expected}")
        ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        check(ports.get("http") == 3000, f"{path}: the http port is not 3000 (PORT's default)")
        resources = container.get("resources", {})
        check(
            "memory" in resources.get("requests", {}) and "memory" in resources.get("limits", {}),
            f"{path}: memory request and limit must be set",
        )


def check_sqlite(docs, path):
    spec = deployment(docs, path)["spec"]
    check(spec.get("replicas") == 1, f"{path}: SQLite runs one replica, not {spec.get('replicas')}")
    strategy = spec.get("strategy", {}).get("type")
    check(strategy == "Recreate", f"{path}: SQLite needs strategy Recreate, not {strategy}")
    mounts = spec["template"]["spec"]["containers"][0].get("volumeMounts", [])
    check(
        any(mount["mountPath"] == "/app/data" for mount in mounts),
        f"{path}: nothing is mounted at /app/data (the journal)",
    )


def check_postgres(docs, path):
    spec = deployment(docs, path)["spec"]
    check(spec.get("replicas", 1) >= 2, f"{path}: expected several replicas")
    strategy = spec.get("strategy", {}).get("type")
    check(strategy == "RollingUpdate", f"{path}: expected RollingUpdate, not {strategy}")
    labels = spec["template"]["metadata"]["labels"]
    budgets = [doc for doc in docs if doc["kind"] == "PodDisruptionBudget"]
    check(
        any(
            all(labels.get(k) == v for k, v in budget["spec"]["selector"]["matchLabels"].items())
            for budget in budgets
        ),
        f"{path}: no PodDisruptionBudget selects the Deployment's pods",
    )


def compose_receivers(path):
    services = yaml.safe_load(Path(path).read_text())["services"]
    return {
        name: service
        for name, service in services.items()
        if "build" in service or service.get("image", "").startswith(RECEIVER_IMAGE)
    }


def check_compose_sqlite(path):
    receivers = compose_receivers(path)
    check(len(receivers) == 1, f"{path}: SQLite runs one receiver, found {sorted(receivers)}")
    for name, service in receivers.items():
        replicas = service.get("deploy", {}).get("replicas", 1)
        check(replicas == 1, f"{path}: {name} must not be scaled on SQLite ({replicas})")


def compose_receiver_env(path):
    """Variables the compose file gives containers of the receiver's image."""
    names = set()
    for service in compose_receivers(path).values():
        environment = service.get("environment", {})
        keys = environment.keys() if isinstance(environment, dict) else [
            entry.split("=", 1)[0] for entry in environment
        ]
        names |= {(key, path) for key in keys}
    return names


def systemd_env(path):
    names = re.findall(r"^Environment=([A-Z][A-Z0-9_]+)=", Path(path).read_text(), re.M)
    return {(name, path) for name in names}


def secret_keys(path):
    """stringData keys of an example Secret, commented-out ones included."""
    names = re.findall(r"^  #? ?([A-Z][A-Z0-9_]+):", Path(path).read_text(), re.M)
    return {(name, path) for name in names}


def check_proxy(caddy_json, path):
    """The webhook's signature covers the body bytes and is carried in headers: the proxy
    route must hand both over untouched."""
    routes = [
        route
        for server in caddy_json["apps"]["http"]["servers"].values()
        for route in server.get("routes", [])
    ]
    handlers = []

    def walk(route):
        for handler in route.get("handle", []):
            handlers.append(handler)
            for sub in handler.get("routes", []):
                walk(sub)

    for route in routes:
        walk(route)
    names = [handler["handler"] for handler in handlers if handler["handler"] != "subroute"]
    check(names == ["reverse_proxy"], f"{path}: expected only reverse_proxy, found {names}")
    for handler in handlers:
        if handler["handler"] != "reverse_proxy":
            continue
        for key in ("headers", "request_buffers", "rewrite"):
            check(key not in handler, f"{path}: reverse_proxy must not set {key}")
        check(len(handler.get("upstreams", [])) >= 2, f"{path}: expected both replicas")
        uri = handler.get("health_checks", {}).get("active", {}).get("uri")
        check(uri == "/readyz", f"{path}: the proxy's health check asks {uri}, not /readyz")


def main(sqlite_rendered, postgres_rendered, caddy_adapted):
    sqlite, postgres = documents(sqlite_rendered), documents(postgres_rendered)
    check_sqlite(sqlite, "deploy/kubernetes/sqlite")
    check_postgres(postgres, "deploy/kubernetes/postgres")
    check_probes(sqlite, "deploy/kubernetes/sqlite")
    check_probes(postgres, "deploy/kubernetes/postgres")
    check_compose_sqlite("deploy/compose.yaml")
    check_proxy(json.loads(Path(caddy_adapted).read_text()), "deploy/Caddyfile")

    used = (
        receiver_env(sqlite, "deploy/kubernetes/sqlite")
        | receiver_env(postgres, "deploy/kubernetes/postgres")
        | compose_receiver_env("deploy/compose.yaml")
        | compose_receiver_env("deploy/compose.postgres.yaml")
        | env_file_names("deploy/sinch-webhooks.env.example")
        | env_file_names("deploy/kubernetes/postgres/config.env")
        | systemd_env("deploy/systemd/sinch-webhooks.service")
        | secret_keys("deploy/kubernetes/sqlite/secret.example.yaml")
        | secret_keys("deploy/kubernetes/postgres/secret.example.yaml")
    )
    known = known_variables()
    for name, path in sorted(used):
        check(name in known, f"{path}: {name} is not a variable the service reads (src/config/)")
    check(len(used) >= 10, f"found only {len(used)} variables: is the parsing broken?")

    for failure in failures:
        print(f"deploy invariant: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
