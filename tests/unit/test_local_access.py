"""--no-cluster's kubeconfig beside the self-signed certificate, and the line saying how to
query the adapter."""

import logging
from pathlib import Path

import pytest
import yaml

from adapter.server.local_access import announce_local_access


@pytest.mark.parametrize(
    ("host", "server"),
    [
        ("127.0.0.1", "https://127.0.0.1:6443"),
        ("0.0.0.0", "https://127.0.0.1:6443"),
        ("::", "https://127.0.0.1:6443"),
        ("::1", "https://[::1]:6443"),
        ("10.0.0.5", "https://10.0.0.5:6443"),
    ],
)
def test_kubeconfig_and_commands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, server: str
) -> None:
    with caplog.at_level(logging.INFO):
        announce_local_access(str(tmp_path), host, 6443)
    kubeconfig = tmp_path / "kubeconfig"
    config = yaml.safe_load(kubeconfig.read_text())
    assert config["clusters"][0]["cluster"] == {
        "server": server,
        "certificate-authority": str(tmp_path / "apiserver.crt"),
    }
    # kubectl prompts for a user name when a kubeconfig has no credentials.
    assert config["users"][0]["user"] == {"token": "no-cluster"}
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert caplog.messages == [
        f"query it with: curl -s --cacert {tmp_path}/apiserver.crt "
        f"{server}/apis/custom.metrics.k8s.io/v1beta2; or kubectl --kubeconfig={kubeconfig} "
        "get --raw /apis/custom.metrics.k8s.io/v1beta2"
    ]


def test_an_unwritable_cert_dir_still_gets_the_curl_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "kubeconfig").mkdir()  # writing the file fails, as in a read-only mount
    with caplog.at_level(logging.INFO):
        announce_local_access(str(tmp_path), "127.0.0.1", 8443)
    assert caplog.messages[0].startswith("not writing a kubeconfig for local use to ")
    assert caplog.messages[1] == (
        f"query it with: curl -s --cacert {tmp_path}/apiserver.crt "
        "https://127.0.0.1:8443/apis/custom.metrics.k8s.io/v1beta2"
    )
