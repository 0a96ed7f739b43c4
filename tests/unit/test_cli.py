"""The command line: Go flag compatibility and `check-config`."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.check.report import check_config_main
from adapter.cli import main
from adapter.options import FLAGS, build_parser, parse_flags, validate_flags

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def run_check(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return check_config_main(list(argv), stdout=out), out.getvalue()


# (flag, default as the Go adapter's --help prints it)
GO_FLAG_DEFAULTS = [
    ("prometheus-url", "https://localhost"),
    ("metrics-relist-interval", "10m0s"),
    ("metrics-max-age", "0s"),
    ("prometheus-verb", "GET"),
    ("secure-port", "443"),
    ("bind-address", "0.0.0.0"),
    ("cert-dir", "apiserver.local.config/certificates"),
    ("client-qps", "5.0"),
    ("client-burst", "10"),
    ("authentication-token-webhook-cache-ttl", "10s"),
    ("authorization-webhook-cache-authorized-ttl", "10s"),
    ("authorization-always-allow-paths", "[/healthz,/readyz,/livez]"),
    ("requestheader-username-headers", "[x-remote-user]"),
    ("profiling", "true"),
    ("v", "0"),
]


def test_help_lists_go_flags_with_defaults() -> None:
    text = " ".join(build_parser().format_help().split())
    for flag, default in GO_FLAG_DEFAULTS:
        assert f"--{flag} " in text
        assert f"(default {default})" in text
    for spec in FLAGS:
        assert f"--{spec.name} " in text


def test_flags_without_effect_say_why() -> None:
    # argparse wraps lines at hyphens too: compare without any whitespace.
    text = "".join(build_parser().format_help().split())
    without_effect = [spec for spec in FLAGS if spec.no_effect]
    assert {spec.name for spec in without_effect} == {
        "disable-http2",
        "http2-max-streams-per-connection",
        "profiling",
        "contention-profiling",
        "debug-socket-path",
        "enable-priority-and-fairness",
        "vmodule",
        "log-flush-frequency",
    }
    for spec in without_effect:
        assert "".join(f"[accepted; no effect here: {spec.no_effect}]".split()) in text


def test_deprecated_alias_sets_its_flag_with_pflags_notice() -> None:
    args = parse_flags(["--audit-webhook-batch-initial-backoff=3s"])
    assert args.audit_webhook_initial_backoff == 3.0
    assert args.flag_warnings == [
        "Flag --audit-webhook-batch-initial-backoff has been deprecated, "
        "Deprecated, use --audit-webhook-initial-backoff instead."
    ]
    both = ["--audit-webhook-initial-backoff=5s", "--audit-webhook-batch-initial-backoff=3s"]
    assert parse_flags(both).audit_webhook_initial_backoff == 5.0


def test_flag_parsing_like_pflag() -> None:
    args = parse_flags(
        [
            "--metrics-relist-interval=1m",
            "--prometheus-header", "X-Scope-OrgID=tenant",
            "--prometheus-header=A=b",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--requestheader-allowed-names", "other",
            "--profiling=false",
            "--disable-http2",
            "--v=4",
        ]
    )  # fmt: skip
    assert args.metrics_relist_interval == 60
    assert args.metrics_max_age == 60  # zero means the relist interval
    assert args.prometheus_header == ["X-Scope-OrgID=tenant", "A=b"]
    assert args.requestheader_allowed_names == ["front-proxy-client", "aggregator", "other"]
    assert args.requestheader_username_headers == ["x-remote-user"]
    assert args.profiling is False
    assert args.disable_http2 is True
    assert args.v == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--metrics-relist-interval=10"], 'invalid argument "10" for "--metrics-relist-interval" flag: time: missing unit in duration "10"', id="duration-without-unit"),
        pytest.param(["--profiling=maybe"], 'invalid argument "maybe" for "--profiling" flag: strconv.ParseBool: parsing "maybe": invalid syntax', id="bad-bool"),
        pytest.param(["--prom=x"], "unknown flag: --prom", id="no-abbreviations"),
        pytest.param(["--no-such-flag"], "unknown flag: --no-such-flag", id="unknown-flag"),
        pytest.param(["/adapter", "--secure-port=6443", "-x"], "unknown shorthand flag: 'x' in -x", id="unknown-shorthand"),
        pytest.param(["--config"], "flag needs an argument: --config", id="missing-argument"),
        pytest.param(["--secure-port=abc"], 'invalid argument "abc" for "--secure-port" flag: strconv.ParseInt: parsing "abc": invalid syntax', id="bad-int"),
        pytest.param(["---x"], "bad flag syntax: ---x", id="bad-syntax"),
    ],
)  # fmt: skip
def test_bad_flags_exit_2_with_pflags_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the Go adapter: pflag.CommandLine is ExitOnError, so pflag prints and exits 2.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == message
    assert "--help" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["/adapter", "--secure-port=1", "--help"]])
def test_help_prints_every_flag_and_exits_0(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "-v int, --v int" in out
    assert "Deprecated klog flags" in out and "--logtostderr [bool]" in out
    for spec in FLAGS:
        assert f"--{spec.name} " in out


def test_version_says_what_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"prometheus-adapter-py v\d+\.\d+\.\d+\S* \(a drop-in for prometheus-adapter v0\.12\.0\), "
        r"\w+ 3\.\d+\.\d+\S*, [a-z]+/\w+\n",
        out,
    ), out
    # pflag's rules first: an unknown flag is still exit 2.
    assert main(["--version", "--nope"]) == 2


def test_help_starts_with_the_commands_and_the_most_used_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    top = capsys.readouterr().out.split("options:")[0]
    commands = top.splitlines()[1:4]
    assert [
        "check-config" in commands[0],
        "explain-hpa" in commands[1],
        "--version" in commands[2],
    ] == [True] * 3
    for flag in ("--config", "--prometheus-url", "--secure-port", "--no-cluster", "--v"):
        assert f"\n  {flag} " in top
    assert len(top.splitlines()) < 25


# The container args of public deployments of the Go adapter v0.12.0
# (/work/shared/deployments/profiles.yaml); the image's ENTRYPOINT comes before them.
_CIPHERS = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_SHA,TLS_RSA_WITH_AES_256_CBC_SHA"
DEPLOYMENTS = {
    "helm-chart": ["/adapter", "--secure-port=6443", "--cert-dir=/tmp/cert", "--prometheus-url=http://prometheus.default.svc:9090", "--metrics-relist-interval=1m", "--v=4", "--config=/etc/adapter/config.yaml"],
    "helm-chart-tls": ["/adapter", "--secure-port=6443", "--tls-cert-file=/var/run/serving-cert/tls.crt", "--tls-private-key-file=/var/run/serving-cert/tls.key", "--cert-dir=/tmp/cert", "--prometheus-url=http://prometheus.default.svc:9090", "--metrics-relist-interval=1m", "--v=4", "--config=/etc/adapter/config.yaml"],
    "kube-prometheus": ["--cert-dir=/var/run/serving-cert", "--config=/etc/adapter/config.yaml", "--metrics-relist-interval=1m", "--prometheus-url=http://prometheus-k8s.monitoring.svc:9090/", "--secure-port=6443", f"--tls-cipher-suites={_CIPHERS}"],
    "upstream-deploy": ["--cert-dir=/var/run/serving-cert", "--config=/etc/adapter/config.yaml", "--metrics-relist-interval=1m", "--prometheus-url=https://prometheus.monitoring.svc:9090/", "--secure-port=6443", f"--tls-cipher-suites={_CIPHERS}"],
    "openshift-cmo": ["--prometheus-auth-config=/etc/prometheus-config/prometheus-config.yaml", "--config=/etc/adapter/config.yaml", "--logtostderr=true", "--metrics-relist-interval=1m", "--prometheus-url=https://prometheus-k8s.openshift-monitoring.svc:9091", "--secure-port=6443", "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"],
}  # fmt: skip
DEPLOYMENT_WARNINGS = {
    "helm-chart": ["ignoring positional arguments: /adapter"],
    "helm-chart-tls": ["ignoring positional arguments: /adapter"],
    "kube-prometheus": [],
    "upstream-deploy": [],
    "openshift-cmo": [
        "ignoring klog flags --logtostderr: deprecated, and removed from the Go adapter in "
        "v0.11; logs always go to stderr"
    ],
}


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_args_parse(name: str) -> None:
    args = parse_flags(DEPLOYMENTS[name])
    assert args.secure_port == 6443
    assert args.config == "/etc/adapter/config.yaml"
    assert args.metrics_relist_interval == 60.0
    assert args.metrics_max_age == 60.0
    assert args.flag_warnings == DEPLOYMENT_WARNINGS[name]
    assert validate_flags(args) == []
    if name.startswith("helm-chart"):
        assert args.v == 4
        assert args.cert_dir == "/tmp/cert"
    if name in ("kube-prometheus", "upstream-deploy"):
        assert args.tls_cipher_suites == _CIPHERS.split(",")
        assert len(args.tls_cipher_suites) == 15
    if name == "openshift-cmo":
        assert args.prometheus_auth_config == "/etc/prometheus-config/prometheus-config.yaml"
        assert len(args.tls_cipher_suites) == 6


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_args_start_the_cli(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Up to loading the config, which does not exist here: every flag was accepted.
    missing = tmp_path / "config.yaml"
    argv = [a.replace("/etc/adapter/config.yaml", str(missing)) for a in DEPLOYMENTS[name]]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot read file" in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {w}" for w in DEPLOYMENT_WARNINGS[name]]


def test_positional_and_legacy_warnings_once_each(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["/adapter", "--logtostderr", "extra", "--log_dir=/x", "--v=2", "/adapter"]
    assert main(argv) == 1  # no --config
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "warning: ignoring positional arguments: /adapter extra /adapter"
    assert err[1] == (
        "warning: ignoring klog flags --logtostderr, --log_dir: deprecated, and removed from "
        "the Go adapter in v0.11; logs always go to stderr"
    )
    assert sum(line.startswith("warning: ") for line in err) == 2
    assert "no metrics discovery configuration file specified" in err[2]


def test_installed_command_ignores_the_go_images_path() -> None:
    # The Helm chart's args begin with /adapter; our image's ENTRYPOINT is prometheus-adapter.
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "/adapter", "--secure-port=6443", "--no-such-flag"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "unknown flag: --no-such-flag"
    assert "unrecognized arguments" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "no metrics discovery configuration file specified (make sure to use --config)", id="no-config"),
        pytest.param(["--config=x", "--prometheus-verb=PUT"], 'unsupported Prometheus HTTP verb "PUT"', id="verb"),
        pytest.param([f"--config={CONFIG_DIR / 'helm-default-rules.yaml'}", "--metrics-relist-interval=1m", "--metrics-max-age=30s"], "max age must not be less than relist interval", id="max-age"),
        pytest.param(["--config=/nonexistent.yaml"], "/nonexistent.yaml: cannot read file", id="missing-file"),
    ],
)  # fmt: skip
def test_server_startup_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_check_config_prints_rules_of_every_sample(path: Path) -> None:
    code, out = run_check(str(path))
    assert code == 0
    assert out.startswith(f"{path}: OK:")


def test_check_config_text_report() -> None:
    code, out = run_check("--config", str(CONFIG_DIR / "config-walkthrough.yaml"))
    assert code == 0
    assert "name         matches ^(.*)_total  as ${1}_per_second" in out
    assert "override kubernetes_pod_name -> pods (Pod /v1, namespaced)" in out
    assert "override kubernetes_namespace -> namespaces (Namespace /v1, cluster-scoped)" in out
    assert (
        'pod-a: sum(rate(<series>{kubernetes_namespace="default",kubernetes_pod_name="pod-a"}[2m]))'
        " by (kubernetes_pod_name)" in out
    )


def test_check_config_shows_warnings_and_template_labels() -> None:
    code, out = run_check(str(CONFIG_DIR / "sample-config.yaml"))
    assert code == 0
    assert "job->jobs.batch" in out
    assert "warning: " in out and "rules[2].seriesQuery" in out


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, bogus: 1}\n", "rules[0].bogus", "unknown field", id="unknown-key"),
        pytest.param("rules:\n- {seriesQuery: x, seriesQuery: y}\n", "rules[0].seriesQuery", "duplicate key", id="duplicate-key"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '(a'}}\n", "rules[0].name.matches", "error parsing regexp", id="bad-regex"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<.Series'}\n", "rules[0].metricsQuery", "unable to parse metrics query template", id="bad-template"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, seriesFilters: [{is: a, isNot: b}]}\n", "rules[0].seriesFilters[0]", "cannot have both", id="filter-with-both"),
    ],
)  # fmt: skip
def test_check_config_rejects_bad_configs(
    tmp_path: Path, text: str, path: str, reason: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    code, out = run_check(str(file))
    assert code == 1
    assert f"{file}: INVALID" in out
    line = next(line for line in out.splitlines() if f" {path}: " in line)
    assert line.strip().startswith(f"{file}:2: {path}: ")
    assert reason in line
    assert "Traceback" not in out


def test_check_config_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: 5\n")
    code, out = run_check("-o", "json", str(CONFIG_DIR / "sample-config.yaml"), str(bad))
    assert code == 1
    good_report, bad_report = json.loads(out)
    assert good_report["valid"] is True
    assert [r["path"] for r in good_report["externalRules"]] == [
        "externalRules[0]",
        "externalRules[1]",
    ]
    assert good_report["externalRules"][1]["example"]["query"] == "sum(<series>{}) by (name)"
    assert bad_report == {
        "file": str(bad),
        "valid": False,
        "errors": [{"path": "rules", "line": 1, "reason": "expected a list, got the scalar '5'"}],
    }


def test_python_dash_m_adapter_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "check-config", str(CONFIG_DIR / "resource-rules.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "resourceRules (metrics.k8s.io), window 3m0s:" in result.stdout
    help_result = subprocess.run(
        [sys.executable, "-m", "adapter", "--help"], capture_output=True, text=True, check=False
    )
    assert help_result.returncode == 0
    assert "--metrics-relist-interval" in help_result.stdout
