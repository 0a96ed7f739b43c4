"""The deploy/ kustomizations: render each variant with the real `kubectl kustomize`, validate
every object against the Kubernetes 1.30 OpenAPI schemas, and check what the aggregator,
kubelet and RBAC need from them (Service/APIService wiring, HTTPS probes, CA handling,
least-privilege RBAC, a hardened pod, a config the adapter itself loads)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapter.naming.rules import load_rules
from adapter.options import parse_flags, validate_flags
from harness.packages import ensure_kubectl

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCRIPT = REPO / "scripts" / "generate-serving-cert.sh"

NAMESPACE = "custom-metrics"
NAME = "prometheus-adapter"
SA_SUBJECT = ("ServiceAccount", NAME, NAMESPACE)
SERVICE_DNS = f"{NAME}.{NAMESPACE}.svc"
CERT_MANAGER_ANNOTATION = "cert-manager.io/inject-ca-from"
K8S_VERSION = "1.30"

BASE_APISERVICES = {
    "v1beta1.custom.metrics.k8s.io": 100,
    "v1beta2.custom.metrics.k8s.io": 200,
    "v1beta1.external.metrics.k8s.io": 100,
}
METRICS_APISERVICE = {"v1beta1.metrics.k8s.io": 100}

# Every rule bound to the adapter's own ServiceAccount by our manifests: (group, resource)
# -> verbs. Anything beyond this (and the bootstrap roles we bind) is a least-privilege bug.
ADAPTER_GRANTS = {
    ("", r): {"get", "list", "watch"} for r in ("pods", "nodes", "namespaces", "services")
}


@dataclass(frozen=True)
class Variant:
    name: str
    apiservices: dict[str, int]
    ca: str  # "none", "cert-manager" or "generated"


VARIANTS = [
    Variant("base", BASE_APISERVICES, "none"),
    Variant("with-metrics-api", BASE_APISERVICES | METRICS_APISERVICE, "none"),
    Variant("cert-manager", BASE_APISERVICES, "cert-manager"),
    Variant("cert-manager+metrics-api", BASE_APISERVICES | METRICS_APISERVICE, "cert-manager"),
    Variant("generated-ca", BASE_APISERVICES, "generated"),
    Variant("generated-ca+metrics-api", BASE_APISERVICES | METRICS_APISERVICE, "generated"),
]


@dataclass
class Rendered:
    variant: Variant
    objects: list[dict[str, Any]]
    overlay: Path

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = [
            o
            for o in self.all(kind)
            if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
        ]
        assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="module")
def kubectl() -> str:
    try:
        return ensure_kubectl()
    except RuntimeError as exc:
        pytest.skip(f"kubectl unavailable: {exc}")


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/ copied to a temp dir, with the generated-ca files made by the real script and
    the metrics-api combinations as extra overlays (the repo tree stays untouched)."""
    root = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(
        DEPLOY, root, ignore=shutil.ignore_patterns("*.crt", "*.key", "apiservice-cabundle.yaml")
    )
    assert shutil.which("openssl"), "openssl is needed by scripts/generate-serving-cert.sh"
    result = subprocess.run(
        ["bash", str(SCRIPT), "--out", str(root / "overlays" / "generated-ca")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # As deploy/README.md says: add ../../components/metrics-api to the overlay's resources
    # (so that the overlay's APIService patches reach it too).
    for overlay in ("cert-manager", "generated-ca"):
        combined = root / "overlays" / f"{overlay}+metrics-api"
        shutil.copytree(root / "overlays" / overlay, combined)
        kustomization = yaml.safe_load((combined / "kustomization.yaml").read_text())
        kustomization["resources"].append("../../components/metrics-api")
        (combined / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return root


def _overlay_dir(root: Path, variant: str) -> Path:
    return root / "base" if variant == "base" else root / "overlays" / variant


def render(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed: {result.stderr}"
    docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    assert all(isinstance(d, dict) for d in docs)
    return docs


@pytest.fixture(scope="module")
def rendered_variants(kubectl: str, deploy_copy: Path) -> dict[str, Rendered]:
    # The combined overlays only exist in the copy, so every variant is rendered from there;
    # the copy holds the repo's own files, so this renders what users apply.
    out = {}
    for variant in VARIANTS:
        overlay = _overlay_dir(deploy_copy, variant.name)
        out[variant.name] = Rendered(variant, render(kubectl, overlay), overlay)
    return out


@pytest.fixture(params=VARIANTS, ids=lambda v: v.name)
def rendered(request: pytest.FixtureRequest, rendered_variants: dict[str, Rendered]) -> Rendered:
    variant: Variant = request.param
    return rendered_variants[variant.name]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _is_kubernetes_group(group: str) -> bool:
    return "." not in group or group.endswith(".k8s.io")


def _subjects(binding: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(s["kind"], s["name"], s.get("namespace", "")) for s in binding.get("subjects", [])}


def _container(rendered: Rendered) -> dict[str, Any]:
    deployment = rendered.one("Deployment", NAME, NAMESPACE)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in by_name, f"port name {port!r} not among the container ports {by_name}"
    return int(by_name[port])


def _args(container: dict[str, Any]) -> dict[str, str]:
    out = {}
    for arg in container.get("args", []):
        key, _, value = arg.partition("=")
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Schema and shape


def test_every_object_validates(rendered: Rendered) -> None:
    assert rendered.objects
    for obj in rendered.objects:
        group = _group(obj["apiVersion"])
        label = (
            f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata'].get('name')}"
        )
        if _is_kubernetes_group(group):
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{label}: {exc.message} at {list(exc.path)}")
        else:
            # CRDs (cert-manager.io): no schema here; check the basic shape.
            assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, label
            assert obj["metadata"].get("name"), label
            assert obj["metadata"].get("namespace") == NAMESPACE, label
            assert isinstance(obj.get("spec"), dict), label


def test_namespaces_are_explicit(rendered: Rendered) -> None:
    rendered.one("Namespace", NAMESPACE)
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService"}
    for obj in rendered.objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, obj["metadata"]["name"]
        elif obj["kind"] == "RoleBinding":
            assert namespace == "kube-system"
        else:
            assert namespace == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"


def test_no_insecure_skip_tls_verify(rendered: Rendered) -> None:
    for obj in rendered.objects:
        for path, value in _walk(obj):
            assert not path.endswith(".insecureSkipTLSVerify"), f"{obj['kind']}{path}={value}"


# ---------------------------------------------------------------------------------------------
# Aggregator wiring


def test_apiservices_point_at_the_service(rendered: Rendered) -> None:
    apiservices = {a["metadata"]["name"]: a for a in rendered.all("APIService")}
    assert set(apiservices) == set(rendered.variant.apiservices)
    service = rendered.one("Service", NAME, NAMESPACE)
    service_ports = {p["port"] for p in service["spec"]["ports"]}
    for name, apiservice in apiservices.items():
        spec = apiservice["spec"]
        assert name == f"{spec['version']}.{spec['group']}"
        assert spec["service"] == {"name": NAME, "namespace": NAMESPACE, "port": 443}
        assert 443 in service_ports
        assert spec["groupPriorityMinimum"] == 100
        assert spec["versionPriority"] == rendered.variant.apiservices[name]


def test_service_targets_https_6443(rendered: Rendered) -> None:
    service = rendered.one("Service", NAME, NAMESPACE)
    container = _container(rendered)
    (port,) = service["spec"]["ports"]
    assert port["name"] == "https"
    assert port["port"] == 443
    assert _container_port(container, port["targetPort"]) == 6443
    (container_port,) = container["ports"]
    assert container_port == {"name": "https", "containerPort": 6443, "protocol": "TCP"}
    pod_labels = rendered.one("Deployment", NAME, NAMESPACE)["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_ca_handling(rendered: Rendered) -> None:
    apiservices = rendered.all("APIService")
    ca = rendered.variant.ca
    for apiservice in apiservices:
        annotations = apiservice["metadata"].get("annotations", {})
        if ca == "cert-manager":
            assert annotations.get(CERT_MANAGER_ANNOTATION) == f"{NAMESPACE}/{NAME}-ca"
            # Left unset so that re-applying does not clear what cainjector wrote.
            assert "caBundle" not in apiservice["spec"]
        elif ca == "generated":
            bundle = apiservice["spec"].get("caBundle", "")
            assert bundle, apiservice["metadata"]["name"]
            ca_pem = (rendered.overlay.parent / "generated-ca" / "ca.crt").read_bytes()
            assert base64.b64decode(bundle, validate=True) == ca_pem
            assert CERT_MANAGER_ANNOTATION not in annotations
        else:
            assert "caBundle" not in apiservice["spec"]
            assert CERT_MANAGER_ANNOTATION not in annotations


def test_cert_manager_objects(rendered: Rendered) -> None:
    if rendered.variant.ca != "cert-manager":
        assert not [o for o in rendered.objects if _group(o["apiVersion"]) == "cert-manager.io"]
        return
    selfsigned = rendered.one("Issuer", f"{NAME}-selfsigned", NAMESPACE)
    assert selfsigned["spec"] == {"selfSigned": {}}
    ca_cert = rendered.one("Certificate", f"{NAME}-ca", NAMESPACE)
    assert ca_cert["spec"]["isCA"] is True
    assert ca_cert["spec"]["issuerRef"]["name"] == f"{NAME}-selfsigned"
    ca_issuer = rendered.one("Issuer", f"{NAME}-ca", NAMESPACE)
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    serving = rendered.one("Certificate", f"{NAME}-tls", NAMESPACE)
    assert serving["spec"]["secretName"] == f"{NAME}-tls"
    assert serving["spec"]["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "Issuer",
        "name": f"{NAME}-ca",
    }
    assert SERVICE_DNS in serving["spec"]["dnsNames"]
    assert f"{SERVICE_DNS}.cluster.local" in serving["spec"]["dnsNames"]
    assert "server auth" in serving["spec"]["usages"]
    assert not serving["spec"].get("isCA", False)


def test_generated_secret_and_certificate(rendered: Rendered) -> None:
    secrets = rendered.all("Secret")
    if rendered.variant.ca != "generated":
        assert not secrets, "the serving Secret comes from cert-manager or generated-ca only"
        return
    secret = rendered.one("Secret", f"{NAME}-tls", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        NAME,
        f"{NAME}.{NAMESPACE}",
        SERVICE_DNS,
        f"{SERVICE_DNS}.cluster.local",
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(data["tls.key"], password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_generated_files_are_gitignored() -> None:
    ignored = (DEPLOY / "overlays" / "generated-ca" / ".gitignore").read_text().split()
    for name in ("ca.crt", "tls.crt", "tls.key", "apiservice-cabundle.yaml"):
        assert name in ignored


# ---------------------------------------------------------------------------------------------
# Deployment


def test_deployment_shape(rendered: Rendered) -> None:
    deployment = rendered.one("Deployment", NAME, NAMESPACE)
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert pod["serviceAccountName"] == NAME
    rendered.one("ServiceAccount", NAME, NAMESPACE)
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    pdb = rendered.one("PodDisruptionBudget", NAME, NAMESPACE)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    container = _container(rendered)
    assert container["image"] == "ghcr.io/example/prometheus-adapter-py:0.1.0"
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][section])


def test_probes_use_https_health_paths(rendered: Rendered) -> None:
    container = _container(rendered)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        get = container[probe]["httpGet"]
        assert get["scheme"] == "HTTPS"
        assert get["path"] == path
        assert _container_port(container, get["port"]) == 6443


def test_security_context(rendered: Rendered) -> None:
    pod = rendered.one("Deployment", NAME, NAMESPACE)["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    container_sc = _container(rendered)["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == pod_sc["runAsGroup"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container_sc["runAsNonRoot"] is True
    assert container_sc["readOnlyRootFilesystem"] is True
    assert container_sc["allowPrivilegeEscalation"] is False
    assert container_sc["capabilities"] == {"drop": ["ALL"]}
    assert container_sc.get("seccompProfile", pod_sc["seccompProfile"]) == {
        "type": "RuntimeDefault"
    }
    assert not container_sc.get("privileged", False)
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_volumes_and_flags(rendered: Rendered) -> None:
    pod = rendered.one("Deployment", NAME, NAMESPACE)["spec"]["template"]["spec"]
    container = _container(rendered)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert volumes[mounts["/etc/adapter"]["name"]]["configMap"]["name"] == "adapter-config"
    secret_mounts = [
        (path, volumes[m["name"]]["secret"])
        for path, m in mounts.items()
        if "secret" in volumes[m["name"]]
    ]
    assert len(secret_mounts) == 1
    cert_dir, secret = secret_mounts[0]
    assert secret["secretName"] == f"{NAME}-tls"
    args = _args(container)
    assert args["--secure-port"] == "6443"
    assert args["--tls-cert-file"] == f"{cert_dir}/tls.crt"
    assert args["--tls-private-key-file"] == f"{cert_dir}/tls.key"
    assert args["--cert-dir"].startswith("/tmp/")
    assert args["--config"] == "/etc/adapter/config.yaml"
    assert args["--prometheus-url"] == "http://prometheus.monitoring.svc:9090/"
    assert args["--metrics-relist-interval"] == "1m"
    for mount in mounts.values():
        if mount["mountPath"] != "/tmp":
            assert mount.get("readOnly") is True, mount
    # The adapter's own flag parser accepts the arguments as they are.
    parsed = parse_flags(container["args"])
    assert validate_flags(parsed) == []
    assert parsed.secure_port == 6443
    assert parsed.metrics_relist_interval == 60.0
    for path in ("/readyz", "/livez"):
        assert path in parsed.authorization_always_allow_paths


def test_configmap_loads_with_the_adapter(rendered: Rendered, tmp_path: Path) -> None:
    configmap = rendered.one("ConfigMap", "adapter-config", NAMESPACE)
    assert set(configmap["data"]) == {"config.yaml"}
    text = configmap["data"]["config.yaml"]
    raw = yaml.safe_load(text)
    assert set(raw) == {"rules", "resourceRules"}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(text)
    compiled = load_rules(config_file)
    assert len(compiled.rules) == len(raw["rules"]) > 0
    assert compiled.resource_rules is not None


# ---------------------------------------------------------------------------------------------
# RBAC


def test_auth_delegation_rbac(rendered: Rendered) -> None:
    bindings = [
        b
        for b in rendered.all("ClusterRoleBinding")
        if b["roleRef"]["name"] == "system:auth-delegator"
    ]
    assert len(bindings) == 1
    (binding,) = bindings
    # system:auth-delegator is the bootstrap role that may create tokenreviews and
    # subjectaccessreviews; binding it is how the adapter gets exactly that.
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:auth-delegator",
    }
    assert _subjects(binding) == {SA_SUBJECT}


def test_authentication_configmap_reader_in_kube_system(rendered: Rendered) -> None:
    (binding,) = rendered.all("RoleBinding")
    assert binding["metadata"]["namespace"] == "kube-system"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }
    assert _subjects(binding) == {SA_SUBJECT}


def _granted_to_adapter(rendered: Rendered) -> dict[tuple[str, str], set[str]]:
    roles = {r["metadata"]["name"]: r for r in rendered.all("ClusterRole")}
    grants: dict[tuple[str, str], set[str]] = {}
    for binding in rendered.all("ClusterRoleBinding"):
        if SA_SUBJECT not in _subjects(binding):
            continue
        role_name = binding["roleRef"]["name"]
        if role_name == "system:auth-delegator":
            continue
        assert role_name in roles, (
            f"the adapter is bound to a ClusterRole we do not ship: {role_name}"
        )
        for rule in roles[role_name]["rules"]:
            assert "nonResourceURLs" not in rule
            assert not rule.get("resourceNames")
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def test_resource_reader_is_least_privilege(rendered: Rendered) -> None:
    role = rendered.one("ClusterRole", "prometheus-adapter-resource-reader")
    covered: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                covered.setdefault((group, resource), set()).update(rule["verbs"])
    for key, verbs in ADAPTER_GRANTS.items():
        assert verbs <= covered.get(key, set()), key
    # Nothing beyond the resource reader (no secrets, no wildcards, no writes).
    assert _granted_to_adapter(rendered) == ADAPTER_GRANTS


def test_hpa_can_read_custom_and_external_metrics(rendered: Rendered) -> None:
    role = rendered.one("ClusterRole", "custom-metrics-server-resources")
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    assert groups == {"custom.metrics.k8s.io", "external.metrics.k8s.io"}
    for rule in role["rules"]:
        assert {"get", "list"} <= set(rule["verbs"])
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
    bindings = [
        b
        for b in rendered.all("ClusterRoleBinding")
        if b["roleRef"]["name"] == "custom-metrics-server-resources"
    ]
    assert len(bindings) == 1
    assert _subjects(bindings[0]) == {
        ("ServiceAccount", "horizontal-pod-autoscaler", "kube-system")
    }


def test_aggregated_metrics_reader(rendered: Rendered) -> None:
    role = rendered.one("ClusterRole", "prometheus-adapter:aggregated-metrics-reader")
    labels = role["metadata"]["labels"]
    for target in ("view", "edit", "admin"):
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{target}"] == "true"
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["metrics.k8s.io"]
    assert set(rule["resources"]) == {"pods", "nodes"}
    assert set(rule["verbs"]) == {"get", "list", "watch"}
