"""The --audit-* flags: AuditOptions.Validate's messages and ApplyTo's decisions (no policy:
nothing recorded; the log file created at start-up; each backend wrapped for its mode)."""

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from adapter.audit.backend import IgnoreErrorsBackend, TruncatingBackend, UnionBackend
from adapter.audit.buffered import BufferedBackend
from adapter.audit.config import AuditConfigError, audit_flag_errors, audit_options, build_auditor
from adapter.audit.log import LogBackend
from adapter.audit.webhook import WebhookBackend
from adapter.options import parse_flags

POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def flag_errors(*flags: str) -> list[str]:
    return audit_flag_errors(audit_options(parse_flags(["--config=c.yaml", *flags])))


def test_defaults_are_valid_and_off(tmp_path: Path) -> None:
    assert flag_errors() == []
    assert build_auditor(parse_flags(["--config=c.yaml"]), CollectorRegistry()) is None


@pytest.mark.parametrize(
    ("flags", "errors"),
    [
        (
            ["--audit-log-format=yaml"],
            ['invalid audit log format yaml, allowed formats are "legacy,json"'],
        ),
        (
            ["--audit-log-maxage=-1", "--audit-log-maxbackup=-2", "--audit-log-maxsize=-3"],
            [
                "--audit-log-maxage -1 can't be a negative number",
                "--audit-log-maxbackup -2 can't be a negative number",
                "--audit-log-maxsize -3 can't be a negative number",
            ],
        ),
        (
            ["--audit-log-mode=async"],
            ['invalid audit log mode async, allowed modes are "batch,blocking,blocking-strict"'],
        ),
        (
            ["--audit-log-mode=batch", "--audit-log-batch-buffer-size=0"],
            ["invalid audit batch log buffer size 0, must be a positive number"],
        ),
        (
            ["--audit-log-mode=batch", "--audit-log-batch-max-size=0"],
            ["invalid audit batch log max batch size 0, must be a positive number"],
        ),
        (
            ["--audit-log-mode=batch", "--audit-log-batch-throttle-enable"],
            ["invalid audit batch log throttle QPS 0, must be a positive number"],
        ),
        (
            [
                "--audit-log-mode=batch",
                "--audit-log-batch-throttle-enable",
                "--audit-log-batch-throttle-qps=1.5",
            ],
            ["invalid audit batch log throttle burst 0, must be a positive number"],
        ),
        (["--audit-log-batch-buffer-size=0"], []),  # batch options are not checked in blocking mode
        (
            ["--audit-log-truncate-max-event-size=0"],
            ["invalid audit truncate log max event size 0, must be a positive number"],
        ),
        (
            ["--audit-log-truncate-max-batch-size=10"],
            [
                "invalid audit truncate log max batch size 10, must be greater than max event size (102400)"
            ],
        ),
        (
            ["--audit-log-version=audit.k8s.io/v1beta1"],
            ['invalid group version, allowed versions are ["audit.k8s.io/v1"]'],
        ),
        (["--audit-log-version=a/b/c"], ["unexpected GroupVersion string: a/b/c"]),
    ],
)
def test_log_flag_errors(flags: list[str], errors: list[str]) -> None:
    assert flag_errors("--audit-log-path=/tmp/audit.log", *flags) == errors
    # Without the backend, its flags are not looked at.
    assert flag_errors(*flags) == []


@pytest.mark.parametrize(
    ("flags", "errors"),
    [
        (
            ["--audit-webhook-mode=later"],
            [
                'invalid audit webhook mode later, allowed modes are "batch,blocking,blocking-strict"'
            ],
        ),
        (
            ["--audit-webhook-batch-throttle-qps=0"],
            ["invalid audit batch webhook throttle QPS 0, must be a positive number"],
        ),
        (
            ["--audit-webhook-batch-throttle-qps=0", "--audit-webhook-batch-throttle-enable=false"],
            [],
        ),
        (
            ["--audit-webhook-version=audit.k8s.io/v1alpha1"],
            ['invalid group version, allowed versions are ["audit.k8s.io/v1"]'],
        ),
    ],
)
def test_webhook_flag_errors(flags: list[str], errors: list[str]) -> None:
    assert flag_errors("--audit-webhook-config-file=/x", *flags) == errors


def test_invalid_flags_stop_start_up() -> None:
    args = parse_flags(
        ["--config=c.yaml", "--audit-log-path=-", "--audit-log-format=xml", "--audit-log-maxage=-1"]
    )
    with pytest.raises(AuditConfigError) as caught:
        build_auditor(args, CollectorRegistry())
    assert str(caught.value).splitlines() == [
        'invalid audit log format xml, allowed formats are "legacy,json"',
        "--audit-log-maxage -1 can't be a negative number",
    ]


def test_without_policy_nothing_is_recorded_but_the_log_file_exists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "logs" / "audit.log"
    args = parse_flags(
        [
            "--config=c.yaml",
            f"--audit-log-path={path}",
            "--audit-webhook-config-file=/does/not/exist",
        ]
    )
    with caplog.at_level(logging.INFO):
        assert build_auditor(args, CollectorRegistry(), verbosity=2) is None
    assert path.exists()
    assert (
        "No audit policy file provided, no events will be recorded for log backend" in caplog.text
    )
    assert (
        "No audit policy file provided, no events will be recorded for webhook backend"
        in caplog.text
    )


def test_policy_without_backend_is_still_checked(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert (
        build_auditor(
            parse_flags(["--config=c.yaml", f"--audit-policy-file={policy}"]), CollectorRegistry()
        )
        is None
    )
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    with pytest.raises(AuditConfigError, match="loaded illegal policy with 0 rules: from file"):
        build_auditor(
            parse_flags(["--config=c.yaml", f"--audit-policy-file={policy}"]), CollectorRegistry()
        )


def test_unwritable_log_path_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = parse_flags(["--config=c.yaml", f"--audit-log-path={blocker}/audit.log"])
    with pytest.raises(AuditConfigError, match=r"^ensureLogFile: "):
        build_auditor(args, CollectorRegistry())


def test_bad_webhook_kubeconfig_stops_start_up(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    args = parse_flags(
        [
            "--config=c.yaml",
            f"--audit-policy-file={policy}",
            f"--audit-webhook-config-file={tmp_path}/missing",
        ]
    )
    with pytest.raises(
        AuditConfigError, match=r"^initializing audit webhook: unable to read kubeconfig"
    ):
        build_auditor(args, CollectorRegistry())


async def test_backends_are_wrapped_for_their_modes(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    kubeconfig = tmp_path / "webhook.kubeconfig"
    kubeconfig.write_text(
        "clusters: [{name: c, cluster: {server: 'https://audit.example:8443/events'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    common = ["--config=c.yaml", f"--audit-policy-file={policy}"]
    log_only = build_auditor(
        parse_flags([*common, f"--audit-log-path={tmp_path}/a.log"]), CollectorRegistry()
    )
    assert log_only is not None and isinstance(log_only.backend, IgnoreErrorsBackend)  # blocking
    both = build_auditor(
        parse_flags(
            [
                *common,
                f"--audit-log-path={tmp_path}/b.log",
                "--audit-log-mode=blocking-strict",
                f"--audit-webhook-config-file={kubeconfig}",
                "--audit-webhook-truncate-enabled",
            ]
        ),
        CollectorRegistry(),
    )
    assert both is not None and isinstance(both.backend, UnionBackend)
    log_backend, webhook_backend = both.backend._backends
    assert isinstance(log_backend, LogBackend)  # blocking-strict: as is
    assert isinstance(webhook_backend, TruncatingBackend)
    assert isinstance(webhook_backend._delegate, BufferedBackend)  # batch, the webhook default
    assert isinstance(webhook_backend._delegate._delegate, WebhookBackend)
    assert webhook_backend._delegate._config.max_batch_size == 400
    await log_only.close()
    await both.close()
