"""explain-hpa's command line, without a cluster."""

import io
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.hpa.command import explain_hpa_main

CONFIG = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"


def test_help_lists_the_server_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain-hpa", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "prometheus-adapter explain-hpa" in out
    for flag in ("--kubeconfig", "--all-namespaces", "--prometheus-url", "--metrics-max-age"):
        assert flag in out


def test_invalid_config_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{seriesQuery: 1, resources: {template: '<<'}}]\n")
    err = io.StringIO()
    assert explain_hpa_main(["--config", str(bad)], io.StringIO(), err) == 1
    assert err.getvalue().startswith("error: ")


def test_unreachable_prometheus_exits_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "current-context: c\n"
    )
    argv = ["--config", str(CONFIG), "--kubeconfig", str(kubeconfig)]
    err = io.StringIO()
    code = explain_hpa_main([*argv, "--prometheus-url", "http://127.0.0.1:1"], io.StringIO(), err)
    assert code == 2 and "cannot reach Prometheus" in err.getvalue()
