"""KubeClient and the kube config loaders against small fake API servers on 127.0.0.1."""

import asyncio
import base64
import logging
import os
import socket
import ssl
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from adapter.kube.api import KubeAPI, KubeAPIError
from adapter.kube.client import PARTIAL_METADATA_LIST_ACCEPT, KubeClient
from adapter.kube.config import (
    ExecCredentialConfig,
    KubeConfig,
    KubeConfigError,
    load_config,
    load_in_cluster,
    load_kubeconfig,
)
from adapter.kube.credentials import ClientCredentials
from harness.pki import CertificateAuthority

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# --- PKI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: bytes
    server_cert: Path
    server_key: Path
    client_cert: bytes
    client_key: bytes
    dir: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server cert for 127.0.0.1 and a client cert (EC keys: fast)."""
    out = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority("test-ca")
    server_cert, server_key = ca.issue_server(("127.0.0.1", "kubernetes.default.svc")).write(
        out, "server"
    )
    client = ca.issue_client("c")
    (out / "ca.crt").write_bytes(ca.cert_pem)
    return Pki(
        ca=ca.cert_pem,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client.cert_pem,
        client_key=client.key_pem,
        dir=out,
    )


def _server_tls(pki: Pki, *, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        ctx.load_verify_locations(cadata=pki.ca.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# --- fake API server ----------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeAPI:
    server: TestServer
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str = "") -> str:
        return str(self.server.make_url(path)).rstrip("/")


def kjson(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def kstatus(code: int, reason: str, message: str) -> web.Response:
    doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return kjson(doc, code)


StartFake = Callable[..., Awaitable[FakeAPI]]


@pytest.fixture
def fake(aiohttp_server: AiohttpServer) -> StartFake:
    async def start(
        respond: Handler | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> FakeAPI:
        fa: FakeAPI

        async def handler(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            fa.seen.append(
                Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
            )
            if respond is None:
                return kjson({"kind": "Thing", "path": request.path})
            return await respond(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = await aiohttp_server(app, ssl=ssl_context)
        fa = FakeAPI(server)
        return fa

    return start


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- kubeconfig ---------------------------------------------------------------------


def _kubeconfig(tmp_path: Path, doc: dict[str, Any], name: str = "kubeconfig") -> str:
    return str(_write(tmp_path / name, orjson.dumps(doc).decode()))  # JSON is YAML


def _doc(cluster: dict[str, Any], user: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "contexts": [{"name": "main", "context": {"cluster": "c1", "user": "u1"}}],
        "clusters": [{"name": "c1", "cluster": cluster}],
        "users": [{"name": "u1", "user": user or {}}],
        **top,
    }


def test_kubeconfig_token_and_ca_data(tmp_path: Path, pki: Pki) -> None:
    path = _kubeconfig(
        tmp_path,
        _doc(
            {
                "server": "https://k.example:6443/prefix/",
                "certificate-authority-data": _b64(pki.ca),
                "tls-server-name": "kubernetes.default.svc",
            },
            {"token": "s3cret"},
        ),
    )
    cfg = load_kubeconfig(path)
    assert cfg == KubeConfig(
        server="https://k.example:6443/prefix",
        ca_data=pki.ca,
        token="s3cret",
        tls_server_name="kubernetes.default.svc",
    )
    assert "s3cret" not in repr(cfg)
    assert load_config(path) == cfg


def test_kubeconfig_files_relative_to_its_directory(tmp_path: Path, pki: Pki) -> None:
    sub = tmp_path / "conf"
    _write(sub / "pki" / "ca.crt", pki.ca)
    _write(sub / "pki" / "c.crt", pki.client_cert)
    _write(sub / "pki" / "c.key", pki.client_key)
    _write(sub / "tok", "abc\n")
    yaml_text = """
apiVersion: v1
kind: Config
current-context: main
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
contexts:
- name: main
  context: {cluster: c1, user: u1}
users:
- name: u1
  user:
    tokenFile: tok
    client-certificate: pki/c.crt
    client-key: pki/c.key
"""
    cfg = load_kubeconfig(str(_write(sub / "config.yaml", yaml_text)))
    assert cfg.ca_data == pki.ca
    assert cfg.client_cert_data == pki.client_cert
    assert cfg.client_key_data == pki.client_key
    assert cfg.token_file == str((sub / "tok").resolve())
    assert cfg.token is None


def test_kubeconfig_cert_data_insecure_and_contexts(tmp_path: Path, pki: Pki) -> None:
    doc = _doc({"server": "https://a:1"}, {"token": "t1"})
    doc["contexts"].append({"name": "other", "context": {"cluster": "c2", "user": "u2"}})
    doc["clusters"].append(
        {"name": "c2", "cluster": {"server": "https://b:2", "insecure-skip-tls-verify": True}}
    )
    doc["users"].append(
        {
            "name": "u2",
            "user": {
                "client-certificate-data": _b64(pki.client_cert),
                "client-key-data": _b64(pki.client_key),
            },
        }
    )
    path = _kubeconfig(tmp_path, doc)
    assert load_kubeconfig(path).server == "https://a:1"
    other = load_kubeconfig(path, context="other")
    assert other.server == "https://b:2"
    assert other.insecure_skip_tls_verify
    assert other.client_cert_data == pki.client_cert
    assert other.client_key_data == pki.client_key
    assert other.token is None


def test_kubeconfig_basic_auth(tmp_path: Path) -> None:
    cfg = load_kubeconfig(
        _kubeconfig(
            tmp_path, _doc({"server": "https://a:1"}, {"username": "u", "password": "pw-1"})
        )
    )
    assert (cfg.username, cfg.password, cfg.token) == ("u", "pw-1", None)
    assert "pw-1" not in repr(cfg)


@pytest.mark.parametrize("server", ["http://a:1", "a:1"])
def test_kubeconfig_plain_http_server_sends_no_credentials(
    tmp_path: Path, pki: Pki, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """clientcmd reads the CA and the user only for an https server; no scheme means http."""
    cluster = {"server": server, "certificate-authority-data": _b64(pki.ca)}
    cfg = load_kubeconfig(_kubeconfig(tmp_path, _doc(cluster, {"token": "secret-t"})))
    assert cfg == KubeConfig(server="http://a:1")
    assert "is not https, so its CA and user credentials are not used" in caplog.text
    assert "secret-t" not in caplog.text


def test_kubeconfig_exec(tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./bin/plugin",
            "args": ["get-token", "--x"],
            "env": [{"name": "FOO", "value": "bar"}],
            "provideClusterInfo": True,
        }
    }
    cfg = load_kubeconfig(_kubeconfig(tmp_path, _doc({"server": "https://a:1"}, user)))
    assert cfg.exec_command == ExecCredentialConfig(
        command=str(tmp_path.resolve() / "bin" / "plugin"),
        api_version="client.authentication.k8s.io/v1",
        args=("get-token", "--x"),
        env=(("FOO", "bar"),),
        provide_cluster_info=True,
    )
    user["exec"]["command"] = "aws"  # looked up in PATH, left alone
    assert load_kubeconfig(
        _kubeconfig(tmp_path, _doc({"server": "https://a:1"}, user))
    ).exec_command == ExecCredentialConfig(
        command="aws",
        api_version="client.authentication.k8s.io/v1",
        args=("get-token", "--x"),
        env=(("FOO", "bar"),),
        provide_cluster_info=True,
    )


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update({"current-context": "nope"}), "context 'nope' not found"),
        (lambda d: d.pop("current-context"), "no current-context"),
        (lambda d: d["contexts"][0]["context"].update(cluster="zz"), "cluster 'zz' not found"),
        (lambda d: d["contexts"][0]["context"].update(user="zz"), "user 'zz' not found"),
        (lambda d: d["clusters"][0]["cluster"].pop("server"), "has no server"),
        (
            lambda d: d["users"][0]["user"].update({"auth-provider": {"name": "oidc"}}),
            "auth-provider, which is not supported",
        ),
        (
            lambda d: d["users"][0]["user"].update(username="a", password="b"),
            "username/password or bearer token may be set, but not both",
        ),
        (
            lambda d: d["users"][0]["user"].update({"client-certificate-data": "!!"}),
            "not valid base64",
        ),
        (
            lambda d: d["users"][0]["user"].update({"client-certificate-data": "YQ=="}),
            "both client-certificate and client-key",
        ),
        (
            lambda d: d["users"][0]["user"].update(
                {"client-key": "missing.key", "client-certificate-data": "YQ=="}
            ),
            "unable to read client-key",
        ),
        (
            lambda d: d["users"][0]["user"].update(
                exec={"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"}
            ),
            "apiVersion .* is not supported",
        ),
        (
            lambda d: d["users"][0]["user"].update(
                exec={"apiVersion": "client.authentication.k8s.io/v1"}
            ),
            "has no command",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(
                {"insecure-skip-tls-verify": True, "certificate-authority-data": "YQ=="}
            ),
            "insecure flag is not allowed",
        ),
    ],
)
def test_kubeconfig_errors(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], match: str
) -> None:
    doc = _doc({"server": "https://a:1"}, {"token": "t"})
    mutate(doc)
    with pytest.raises(KubeConfigError, match=match):
        load_kubeconfig(_kubeconfig(tmp_path, doc))


def test_kubeconfig_unreadable_or_invalid(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="unable to read kubeconfig"):
        load_kubeconfig(str(tmp_path / "absent"))
    with pytest.raises(KubeConfigError, match="not valid YAML"):
        load_kubeconfig(str(_write(tmp_path / "bad", "a: [")))
    with pytest.raises(KubeConfigError, match="mapping at the top level"):
        load_kubeconfig(str(_write(tmp_path / "list", "- 1\n")))


# --- in-cluster ---------------------------------------------------------------------


def test_in_cluster(tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    token = _write(tmp_path / "token", "tok")
    ca = _write(tmp_path / "ca.crt", pki.ca)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = load_in_cluster(token_path=str(token), ca_path=str(ca), host_env=env)
    assert cfg == KubeConfig(server="https://10.0.0.1:443", ca_data=pki.ca, token_file=str(token))
    env6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    with caplog.at_level(logging.ERROR):
        cfg6 = load_in_cluster(token_path=str(token), ca_path=str(tmp_path / "no"), host_env=env6)
    assert cfg6.server == "https://[fd00::1]:6443"
    assert cfg6.ca_data is None
    assert "expected to load root CA config" in caplog.text
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST"):
        load_in_cluster(token_path=str(token), ca_path=str(ca), host_env={})
    with pytest.raises(KubeConfigError, match="service account token"):
        load_in_cluster(token_path=str(tmp_path / "none"), ca_path=str(ca), host_env=env)


def test_load_config_empty_path_is_in_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="in-cluster"):
        load_config("")


# --- requests -----------------------------------------------------------------------


async def test_get_and_post_over_tls(fake: StartFake, pki: Pki) -> None:
    async def respond(request: web.Request) -> web.Response:
        if request.method == "POST":
            body = orjson.loads(await request.read())
            return kjson({**body, "status": {"echo": body["spec"]}}, 201)
        return kjson({"kind": "PodList", "items": []})

    fa = await fake(respond, ssl_context=_server_tls(pki))
    cfg = KubeConfig(server=fa.url() + "/prefix/", ca_data=pki.ca, token="tok-abc")
    async with KubeClient(cfg, user_agent="ua/1") as client:
        api: KubeAPI = client
        got = await api.get("/api/v1/pods", {"labelSelector": "a=b,c in (d)"})
        assert got == {"kind": "PodList", "items": []}
        posted = await api.post("/apis/x/v1/things", {"spec": {"a": 1}})
        assert posted["status"] == {"echo": {"a": 1}}
        review = await client.create_token_review("user-token", ["aud1"])
        assert review == {"echo": {"token": "user-token", "audiences": ["aud1"]}}
        sar = await client.create_subject_access_review({"user": "bob"})
        assert sar == {"echo": {"user": "bob"}}
        await client.get_configmap("kube-system", "extension-apiserver-authentication")
        await client.list_metadata("/api/v1/namespaces/ns/pods", {"labelSelector": "x"})
    get, post, tr, sar_seen, cm, meta = fa.seen
    assert get.path == "/prefix/api/v1/pods"
    assert get.query == {"labelSelector": "a=b,c in (d)"}
    assert get.headers["Authorization"] == "Bearer tok-abc"
    assert get.headers["Accept"] == "application/json"
    assert get.headers["User-Agent"] == "ua/1"
    assert post.method == "POST"
    assert post.headers["Content-Type"] == "application/json"
    assert orjson.loads(post.body) == {"spec": {"a": 1}}
    assert tr.path == "/prefix/apis/authentication.k8s.io/v1/tokenreviews"
    assert orjson.loads(tr.body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "user-token", "audiences": ["aud1"]},
    }
    assert sar_seen.path == "/prefix/apis/authorization.k8s.io/v1/subjectaccessreviews"
    assert orjson.loads(sar_seen.body)["kind"] == "SubjectAccessReview"
    assert (
        cm.path
        == "/prefix/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
    )
    assert meta.headers["Accept"] == PARTIAL_METADATA_LIST_ACCEPT
    assert meta.query == {"labelSelector": "x"}


async def test_tls_server_name_and_insecure(fake: StartFake, pki: Pki) -> None:
    fa = await fake(ssl_context=_server_tls(pki))
    # Connect to 127.0.0.1 but verify the certificate for a DNS name it carries.
    named = KubeConfig(server=fa.url(), ca_data=pki.ca, tls_server_name="kubernetes.default.svc")
    async with KubeClient(named) as client:
        assert (await client.get("/x"))["path"] == "/x"
    async with KubeClient(KubeConfig(server=fa.url(), insecure_skip_tls_verify=True)) as client:
        assert (await client.get("/y"))["path"] == "/y"
    async with KubeClient(KubeConfig(server=fa.url())) as client:  # system roots: unknown CA
        with pytest.raises(KubeAPIError) as info:
            await client.get("/z")
    assert info.value.status == 0
    assert info.value.reason == "ConnectionError"
    assert "certificate" in info.value.message.lower()


async def test_client_certificate(fake: StartFake, pki: Pki) -> None:
    fa = await fake(ssl_context=_server_tls(pki, require_client_cert=True))
    cfg = KubeConfig(
        server=fa.url(),
        ca_data=pki.ca,
        client_cert_data=pki.client_cert,
        client_key_data=pki.client_key,
    )
    before = set(os.listdir(_tmpdir()))
    async with KubeClient(cfg) as client:
        assert (await client.get("/ok"))["path"] == "/ok"
    assert not {n for n in set(os.listdir(_tmpdir())) - before if n.startswith("kube-client-")}
    async with KubeClient(KubeConfig(server=fa.url(), ca_data=pki.ca)) as client:
        with pytest.raises(KubeAPIError) as info:
            await client.get("/ok")
    assert info.value.status == 0
    assert "Authorization" not in fa.seen[-1].headers


def _tmpdir() -> str:
    return tempfile.gettempdir()


@pytest.mark.parametrize(("code", "reason"), [(404, "NotFound"), (403, "Forbidden"), (410, "Gone")])
async def test_status_errors(fake: StartFake, code: int, reason: str) -> None:
    async def respond(request: web.Request) -> web.Response:
        return kstatus(code, reason, f'configmaps "x" is {reason.lower()}')

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        with pytest.raises(KubeAPIError) as info:
            await client.get_configmap("ns", "x")
    err = info.value
    assert (err.status, err.reason) == (code, reason)
    assert err.message == f'configmaps "x" is {reason.lower()}'
    assert err.path == "/api/v1/namespaces/ns/configmaps/x"


async def test_non_status_error_body(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(status=502, text="upstream down " + "x" * 500)

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        with pytest.raises(KubeAPIError) as info:
            await client.get("/api")
    assert info.value.status == 502
    assert info.value.reason == "Bad Gateway"
    assert info.value.message.startswith("upstream down x")
    assert len(info.value.message) == 200


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with KubeClient(KubeConfig(server=f"http://127.0.0.1:{port}", token="tok-xyz")) as c:
        with pytest.raises(KubeAPIError) as info:
            await c.get("/api")
    assert (info.value.status, info.value.reason) == (0, "ConnectionError")
    assert "tok-xyz" not in str(info.value)


async def test_timeout(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return kjson({})

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url()), timeout=0.2) as client:
        with pytest.raises(KubeAPIError) as info:
            await client.get("/slow")
    assert (info.value.status, info.value.reason) == (0, "Timeout")


async def test_rate_limit(fake: StartFake) -> None:
    fa = await fake()
    async with KubeClient(KubeConfig(server=fa.url()), qps=10, burst=1) as client:
        await client.get("/warmup")  # the session and connection are set up
        await asyncio.sleep(0.15)  # bucket refilled to its single token
        started = time.monotonic()
        await asyncio.gather(*(client.get(f"/r{i}") for i in range(5)))
        assert time.monotonic() - started >= 0.35
    async with KubeClient(KubeConfig(server=fa.url()), qps=0) as client:  # disabled
        started = time.monotonic()
        await asyncio.gather(*(client.get(f"/r{i}") for i in range(20)))
        assert time.monotonic() - started < 0.35


async def test_tokens_never_in_errors(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.Response:
        echoed = request.headers.get("Authorization", "")
        body = await request.read()
        if request.path.startswith("/plain"):
            return web.Response(status=500, text=f"oops {echoed} {body.decode()}")
        return kstatus(401, "Unauthorized", f"bad credentials {echoed} {body.decode()}")

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url(), token="sekrit-token")) as client:
        for call in (
            client.get("/x"),
            client.get("/plain"),
            client.create_token_review("their-token"),
        ):
            with pytest.raises(KubeAPIError) as info:
                await call
            assert "sekrit-token" not in str(info.value)
            assert "their-token" not in str(info.value)
            assert "<redacted>" in info.value.message


async def test_credentials_cut_short_or_encoded_never_in_errors(fake: StartFake) -> None:
    password = "pa/ss@w0rd-long"

    async def respond(request: web.Request) -> web.Response:
        echoed = request.headers.get("Authorization", "")
        if request.path.startswith("/cut"):  # the message keeps 200 characters: a cut token
            return web.Response(status=500, text=f"{'x' * 180} {echoed}")
        return kstatus(403, "Forbidden", f"{echoed}: alice:{password} or {quote(password)}")

    fa = await fake(respond)
    config = KubeConfig(server=fa.url(), username="alice", password=password)
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    async with KubeClient(config) as client:
        for path in ("/cut", "/status"):
            with pytest.raises(KubeAPIError) as info:
                await client.get(path)
            for secret in (password, quote(password), basic):
                assert secret[:6] not in info.value.message, (secret, info.value.message)
            assert "<redacted>" in info.value.message


def test_secrets_list_every_form_of_basic_credentials() -> None:
    creds = ClientCredentials(KubeConfig(server="https://a:1", username="al", password="p w/x"))
    assert {"p w/x", "p%20w%2Fx", "al:p w/x", "YWw6cCB3L3g="} <= set(creds.secrets())


async def test_token_file_rotation(fake: StartFake, tmp_path: Path) -> None:
    token = _write(tmp_path / "token", "first\n")
    fa = await fake()
    async with KubeClient(KubeConfig(server=fa.url(), token="static", token_file=str(token))) as c:
        await c.get("/a")
        # Kubernetes swaps a symlinked directory; a rename gives a new inode the same way.
        _write(tmp_path / "token.new", "second")
        os.replace(tmp_path / "token.new", token)
        await c.get("/b")
    assert [s.headers["Authorization"] for s in fa.seen] == ["Bearer first", "Bearer second"]


# --- exec plugin --------------------------------------------------------------------


def _plugin(tmp_path: Path, *, expires_in: float | None, cert: Pki | None = None) -> Path:
    """A credential plugin that counts its runs and returns token `tok-<run>`."""
    counter = tmp_path / "runs"
    status: dict[str, Any] = {}
    if cert is not None:
        status["clientCertificateData"] = cert.client_cert.decode()
        status["clientKeyData"] = cert.client_key.decode()
    script = f"""#!{sys.executable}
import datetime, json, os, pathlib
counter = pathlib.Path({str(counter)!r})
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["interactive"] is False
assert os.environ["PLUGIN_ENV"] == "yes"
status = {status!r}
status["token"] = "tok-%d" % n
expires_in = {expires_in!r}
if expires_in is not None:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
    status["expirationTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
"""
    path = _write(tmp_path / "plugin.py", script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _exec(
    plugin: Path, api_version: str = "client.authentication.k8s.io/v1"
) -> ExecCredentialConfig:
    return ExecCredentialConfig(
        command=str(plugin), api_version=api_version, env=(("PLUGIN_ENV", "yes"),)
    )


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


def test_exec_plugin_unused_when_the_user_has_other_credentials(pki: Pki) -> None:
    """client-go skips the plugin when the kubeconfig has a token, basic auth or a cert."""
    plugin = _exec(Path("/nonexistent/plugin"))
    others: list[dict[str, Any]] = [
        {"token": "t"},
        {"username": "u", "password": "p"},
        {"client_cert_data": pki.client_cert, "client_key_data": pki.client_key},
    ]
    for other in others:
        creds = ClientCredentials(KubeConfig(server="https://a:1", exec_command=plugin, **other))
        assert not creds.uses_exec and not creds.needs_refresh(), other
    assert ClientCredentials(KubeConfig(server="https://a:1", exec_command=plugin)).needs_refresh()


def test_basic_auth_header_and_secrets() -> None:
    creds = ClientCredentials(KubeConfig(server="https://a:1", username="alice", password="pw"))
    assert creds.authorization() == "Basic YWxpY2U6cHc="
    assert {"pw", "YWxpY2U6cHc="} <= set(creds.secrets())


async def test_exec_plugin_cached_until_expiry(fake: StartFake, tmp_path: Path) -> None:
    fa = await fake()
    plugin = _plugin(tmp_path, expires_in=3600)
    async with KubeClient(KubeConfig(server=fa.url(), exec_command=_exec(plugin))) as client:
        await asyncio.gather(client.get("/a"), client.get("/b"))
        await client.get("/c")
    assert _runs(tmp_path) == 1
    assert {s.headers["Authorization"] for s in fa.seen} == {"Bearer tok-1"}

    expiring = tmp_path / "expiring"
    plugin = _plugin(expiring, expires_in=1)  # within the refresh margin: never reused
    cfg = KubeConfig(
        server=fa.url(), exec_command=_exec(plugin, "client.authentication.k8s.io/v1beta1")
    )
    async with KubeClient(cfg) as client:
        await client.get("/d")
        await client.get("/e")
    assert _runs(expiring) == 2
    assert [s.headers["Authorization"] for s in fa.seen[-2:]] == ["Bearer tok-1", "Bearer tok-2"]


async def test_exec_plugin_refreshed_on_401(fake: StartFake, tmp_path: Path) -> None:
    async def respond(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer tok-2":
            return kstatus(401, "Unauthorized", "Unauthorized")
        return kjson({"ok": True})

    fa = await fake(respond)
    plugin = _plugin(tmp_path, expires_in=None)
    async with KubeClient(KubeConfig(server=fa.url(), exec_command=_exec(plugin))) as client:
        assert await client.get("/a") == {"ok": True}
        assert await client.get("/b") == {"ok": True}
    assert _runs(tmp_path) == 2
    assert [s.headers["Authorization"] for s in fa.seen] == [
        "Bearer tok-1",
        "Bearer tok-2",
        "Bearer tok-2",
    ]


async def test_exec_plugin_client_certificate(fake: StartFake, tmp_path: Path, pki: Pki) -> None:
    fa = await fake(ssl_context=_server_tls(pki, require_client_cert=True))
    plugin = _plugin(tmp_path, expires_in=3600, cert=pki)
    cfg = KubeConfig(server=fa.url(), ca_data=pki.ca, exec_command=_exec(plugin))
    async with KubeClient(cfg) as client:
        assert (await client.get("/m"))["path"] == "/m"


async def test_exec_plugin_failure(fake: StartFake, tmp_path: Path) -> None:
    fa = await fake()
    bad = _write(tmp_path / "bad.py", f"#!{sys.executable}\nprint('not json')\n")
    bad.chmod(0o755)
    async with KubeClient(KubeConfig(server=fa.url(), exec_command=_exec(bad))) as client:
        with pytest.raises(KubeAPIError, match="not JSON"):
            await client.get("/a")
    missing = _exec(tmp_path / "missing")
    async with KubeClient(KubeConfig(server=fa.url(), exec_command=missing)) as client:
        with pytest.raises(KubeAPIError, match="ExecPluginError"):
            await client.get("/a")
    assert fa.seen == []


# --- watch --------------------------------------------------------------------------


def _event(kind: str, name: str, rv: str) -> dict[str, Any]:
    return {
        "type": kind,
        "object": {"kind": "Pod", "metadata": {"name": name, "resourceVersion": rv}},
    }


async def _stream(request: web.Request, lines: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for line in lines:
        await resp.write(line)
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


async def test_watch_streams_until_end(fake: StartFake) -> None:
    events = [_event("ADDED", "a", "1"), _event("MODIFIED", "a", "2"), _event("DELETED", "a", "3")]

    async def respond(request: web.Request) -> web.StreamResponse:
        raw = b"".join(orjson.dumps(e) + b"\n" for e in events)
        # Split mid-line and across lines, as TCP may.
        return await _stream(request, [raw[:10], raw[10:70], raw[70:] + b"\n"])

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url(), token="t")) as client:
        got = [e async for e in client.watch("/api/v1/pods", {"resourceVersion": "0"})]
    assert got == events
    assert fa.seen[0].query == {"watch": "1", "resourceVersion": "0"}
    assert fa.seen[0].headers["Authorization"] == "Bearer t"


async def test_watch_error_event_and_final_line_without_newline(fake: StartFake) -> None:
    gone = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version: 1 (5)",
        },
    }

    async def respond(request: web.Request) -> web.StreamResponse:
        return await _stream(
            request, [orjson.dumps(_event("ADDED", "a", "1")) + b"\n", orjson.dumps(gone)]
        )

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        got = [e async for e in client.watch("/api/v1/pods")]
    assert got[-1] == gone
    assert len(got) == 2


async def test_watch_undecodable_line(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.StreamResponse:
        return await _stream(
            request, [b"{not json}\n", orjson.dumps(_event("ADDED", "a", "1")) + b"\n"]
        )

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        got = [e async for e in client.watch("/api/v1/pods")]
    assert len(got) == 1
    assert got[0]["type"] == "ERROR"
    assert got[0]["object"]["code"] == 500


async def test_watch_http_error(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.Response:
        return kstatus(403, "Forbidden", "pods is forbidden")

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        with pytest.raises(KubeAPIError) as info:
            async for _ in client.watch("/api/v1/pods"):
                pass
    assert (info.value.status, info.value.reason) == (403, "Forbidden")


async def test_watch_cancel_mid_stream(fake: StartFake) -> None:
    server_saw_close = asyncio.Event()

    async def respond(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for i in range(1000):
                await resp.write(orjson.dumps(_event("ADDED", f"p{i}", str(i))) + b"\n")
                await asyncio.sleep(0.02)
        except (ConnectionResetError, asyncio.CancelledError):
            server_saw_close.set()
            raise
        return resp

    fa = await fake(respond)
    async with KubeClient(KubeConfig(server=fa.url())) as client:
        # The consumer stops early: closing the generator closes the response.
        stream = client.watch("/api/v1/pods", {"timeoutSeconds": "600"})
        got = [await anext(stream), await anext(stream)]
        assert [e["object"]["metadata"]["name"] for e in got] == ["p0", "p1"]
        await stream.aclose()
        await asyncio.wait_for(server_saw_close.wait(), 5)

        # The consuming task is cancelled while waiting for the next event.
        server_saw_close.clear()

        async def consume() -> None:
            async for _ in client.watch("/api/v1/pods"):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server_saw_close.wait(), 5)


async def test_closed_client_refuses(fake: StartFake) -> None:
    fa = await fake()
    client = KubeClient(KubeConfig(server=fa.url()))
    await client.get("/a")
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("/a")


def test_invalid_server_url() -> None:
    with pytest.raises(KubeConfigError, match="invalid server URL"):
        KubeClient(KubeConfig(server="ftp://x"))
