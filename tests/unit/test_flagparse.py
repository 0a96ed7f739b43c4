"""The command line parsed as spf13/pflag v1.0.5 parses it (the Go adapter v0.12.0's parser).

Expected values and messages are pflag's and Go strconv's (flag.go parseArgs/parseLongArg/
parseSingleShortArg, int.go ParseInt base 0, bool.go ParseBool, string_slice.go readAsCSV,
string_array.go, golangflag.go PFlagFromGoFlag, klog's Level.Set ParseInt base 10, 32 bits).
"""

import argparse
import shlex
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.flagparse import FlagError, HelpRequested, parse
from adapter.options import FLAGS, KLOG_LEGACY_FLAGS, parse_flags
from adapter.server.run import _bind_address


def flags_of(argv: list[str]) -> dict[str, Any]:
    """The parsed flags, without the parse's bookkeeping."""
    values = vars(parse_flags(argv))
    del values["changed_flags"], values["flag_warnings"]
    return values


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        # Long flags.
        pytest.param(["--config=a.yaml"], "config", "a.yaml", id="flag=value"),
        pytest.param(["--config", "a.yaml"], "config", "a.yaml", id="flag-space-value"),
        pytest.param(["--config="], "config", "", id="flag=empty"),
        pytest.param(["--config=a=b"], "config", "a=b", id="value-with-equals"),
        pytest.param(["--config", "--secure-port=1"], "config", "--secure-port=1", id="next-word-is-the-value-even-with-dashes"),
        pytest.param(["--config=a", "--config=b"], "config", "b", id="last-wins"),
        # klog's v: a one-letter Go flag, so also the shorthand -v (pflag.PFlagFromGoFlag).
        pytest.param(["-v", "4"], "v", 4, id="-v-space"),
        pytest.param(["-v=4"], "v", 4, id="-v=4"),
        pytest.param(["-v4"], "v", 4, id="-v4"),
        pytest.param(["--v=4"], "v", 4, id="--v=4"),
        pytest.param(["--v", "4"], "v", 4, id="--v-space"),
        pytest.param(["-v", "-1"], "v", -1, id="-v-negative"),
        pytest.param(["--v=007"], "v", 7, id="level-is-base-10"),
        # Bools: bare, or =value by strconv.ParseBool.
        pytest.param(["--disable-http2"], "disable_http2", True, id="bare-bool"),
        pytest.param(["--disable-http2=true"], "disable_http2", True, id="bool=true"),
        pytest.param(["--profiling=false"], "profiling", False, id="bool=false"),
        pytest.param(["--profiling=0"], "profiling", False, id="bool=0"),
        pytest.param(["--profiling=F"], "profiling", False, id="bool=F"),
        pytest.param(["--disable-http2=TRUE"], "disable_http2", True, id="bool=TRUE"),
        pytest.param(["--disable-http2=t"], "disable_http2", True, id="bool=t"),
        # Ints: strconv.ParseInt(s, 0, 64).
        pytest.param(["--secure-port=0x1F"], "secure_port", 31, id="int-hex"),
        pytest.param(["--secure-port=0o17"], "secure_port", 15, id="int-0o"),
        pytest.param(["--secure-port=017"], "secure_port", 15, id="int-leading-0-is-octal"),
        pytest.param(["--secure-port=0b101"], "secure_port", 5, id="int-binary"),
        pytest.param(["--secure-port=0_10"], "secure_port", 8, id="int-underscore-after-prefix"),
        pytest.param(["--secure-port=0x_1_F"], "secure_port", 31, id="int-hex-underscores"),
        pytest.param(["--secure-port=+6443"], "secure_port", 6443, id="int-plus"),
        pytest.param(["--client-burst=-5"], "client_burst", -5, id="int-negative"),
        pytest.param(["--secure-port=0"], "secure_port", 0, id="int-zero"),
        # Floats: strconv.ParseFloat(s, 32).
        pytest.param(["--client-qps=2.5"], "client_qps", 2.5, id="float"),
        pytest.param(["--client-qps=1e2"], "client_qps", 100.0, id="float-exponent"),
        pytest.param(["--client-qps=.5"], "client_qps", 0.5, id="float-leading-dot"),
        pytest.param(["--client-qps=0x1p-2"], "client_qps", 0.25, id="float-hex"),
        pytest.param(["--client-qps=1_0.5"], "client_qps", 10.5, id="float-underscore"),
        # Durations: time.ParseDuration.
        pytest.param(["--metrics-relist-interval=1m30s"], "metrics_relist_interval", 90.0, id="duration"),
        pytest.param(["--metrics-relist-interval", "1.5h"], "metrics_relist_interval", 5400.0, id="duration-fraction"),
        pytest.param(["--discovery-interval=0"], "discovery_interval", 0.0, id="duration-zero"),
        # stringSlice: CSV; the first use replaces the default, later uses append.
        pytest.param(["--requestheader-username-headers=a,b", "--requestheader-username-headers", "c"], "requestheader_username_headers", ["a", "b", "c"], id="slice-replaces-then-appends"),
        pytest.param(["--requestheader-username-headers="], "requestheader_username_headers", [], id="slice-empty-clears-default"),
        pytest.param(["--requestheader-username-headers=", "--requestheader-username-headers=a"], "requestheader_username_headers", ["a"], id="slice-empty-then-value"),
        pytest.param([], "requestheader_username_headers", ["x-remote-user"], id="slice-default"),
        pytest.param(['--tls-cipher-suites="A,B",C'], "tls_cipher_suites", ["A,B", "C"], id="slice-csv-quotes"),
        pytest.param(['--tls-cipher-suites="say ""hi""",'], "tls_cipher_suites", ['say "hi"', ""], id="slice-csv-escaped-quote"),
        pytest.param(["--tls-cipher-suites=A,B\nC"], "tls_cipher_suites", ["A", "B"], id="slice-csv-first-record-only"),
        pytest.param(["--tls-cipher-suites=\nA"], "tls_cipher_suites", ["A"], id="slice-csv-skips-empty-lines"),
        # stringArray: each use appends the whole value.
        pytest.param(["--prometheus-header=A=1,B=2", "--prometheus-header", "C=3"], "prometheus_header", ["A=1,B=2", "C=3"], id="array-appends-whole-values"),
        pytest.param(["--prometheus-header="], "prometheus_header", [""], id="array-empty-value"),
    ],
)  # fmt: skip
def test_syntax_forms(argv: list[str], dest: str, value: object) -> None:
    assert flags_of(argv)[dest] == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--no-such-flag"], "unknown flag: --no-such-flag", id="unknown"),
        pytest.param(["--no-such-flag=1"], "unknown flag: --no-such-flag", id="unknown-with-value"),
        pytest.param(["--prom=x"], "unknown flag: --prom", id="no-abbreviations"),
        pytest.param(["--secure_port=1"], "unknown flag: --secure_port", id="no-underscore-normalisation"),
        pytest.param(["--logtostderr", "--no-such-flag"], "unknown flag: --no-such-flag", id="after-a-legacy-flag"),
        pytest.param(["-x"], "unknown shorthand flag: 'x' in -x", id="unknown-shorthand"),
        pytest.param(["-xv"], "unknown shorthand flag: 'x' in -xv", id="unknown-shorthand-run"),
        pytest.param(["-c", "x"], "unknown shorthand flag: 'c' in -c", id="no-config-shorthand"),
        pytest.param(["-é"], "unknown shorthand flag: 'Ã' in -é", id="shorthand-is-a-byte"),
        pytest.param(["--config"], "flag needs an argument: --config", id="missing-argument"),
        pytest.param(["--secure-port"], "flag needs an argument: --secure-port", id="missing-int-argument"),
        pytest.param(["-v"], "flag needs an argument: 'v' in -v", id="missing-shorthand-argument"),
        pytest.param(["---x"], "bad flag syntax: ---x", id="three-dashes"),
        pytest.param(["--=x"], "bad flag syntax: --=x", id="no-name"),
        pytest.param(["--secure-port=abc"], 'invalid argument "abc" for "--secure-port" flag: strconv.ParseInt: parsing "abc": invalid syntax', id="bad-int"),
        pytest.param(["--secure-port="], 'invalid argument "" for "--secure-port" flag: strconv.ParseInt: parsing "": invalid syntax', id="empty-int"),
        pytest.param(["--secure-port=1_000"], 'invalid argument "1_000" for "--secure-port" flag: strconv.ParseInt: parsing "1_000": invalid syntax', id="underscore-needs-base-prefix"),
        pytest.param(["--secure-port=0x"], 'invalid argument "0x" for "--secure-port" flag: strconv.ParseInt: parsing "0x": invalid syntax', id="bare-hex-prefix"),
        pytest.param(["--secure-port=08"], 'invalid argument "08" for "--secure-port" flag: strconv.ParseInt: parsing "08": invalid syntax', id="bad-octal"),
        pytest.param(["--secure-port=9223372036854775808"], 'invalid argument "9223372036854775808" for "--secure-port" flag: strconv.ParseInt: parsing "9223372036854775808": value out of range', id="int-out-of-range"),
        pytest.param(["--v=0x10"], 'invalid argument "0x10" for "-v, --v" flag: strconv.ParseInt: parsing "0x10": invalid syntax', id="level-has-no-base-prefix"),
        pytest.param(["-v", "x"], 'invalid argument "x" for "-v, --v" flag: strconv.ParseInt: parsing "x": invalid syntax', id="bad-level-shorthand"),
        pytest.param(["--v=2147483648"], 'invalid argument "2147483648" for "-v, --v" flag: strconv.ParseInt: parsing "2147483648": value out of range', id="level-is-int32"),
        pytest.param(["-v="], 'invalid argument "=" for "-v, --v" flag: strconv.ParseInt: parsing "=": invalid syntax', id="-v=-is-the-value-="),
        pytest.param(["--profiling=maybe"], 'invalid argument "maybe" for "--profiling" flag: strconv.ParseBool: parsing "maybe": invalid syntax', id="bad-bool"),
        pytest.param(["--profiling="], 'invalid argument "" for "--profiling" flag: strconv.ParseBool: parsing "": invalid syntax', id="empty-bool"),
        pytest.param(["--profiling=yes"], 'invalid argument "yes" for "--profiling" flag: strconv.ParseBool: parsing "yes": invalid syntax', id="bool-yes"),
        pytest.param(["--client-qps=abc"], 'invalid argument "abc" for "--client-qps" flag: strconv.ParseFloat: parsing "abc": invalid syntax', id="bad-float"),
        pytest.param(["--client-qps=1e39"], 'invalid argument "1e39" for "--client-qps" flag: strconv.ParseFloat: parsing "1e39": value out of range', id="float32-range"),
        pytest.param(["--metrics-relist-interval=10"], 'invalid argument "10" for "--metrics-relist-interval" flag: time: missing unit in duration "10"', id="duration-without-unit"),
        pytest.param(["--metrics-relist-interval=1x"], 'invalid argument "1x" for "--metrics-relist-interval" flag: time: unknown unit "x" in duration "1x"', id="duration-unknown-unit"),
        pytest.param(['--tls-cipher-suites=A"B'], 'invalid argument "A\\"B" for "--tls-cipher-suites" flag: parse error on line 1, column 2: bare " in non-quoted-field', id="csv-bare-quote"),
        pytest.param(['--tls-cipher-suites="A"B'], 'invalid argument "\\"A\\"B" for "--tls-cipher-suites" flag: parse error on line 1, column 3: extraneous or missing " in quoted-field', id="csv-extraneous-quote"),
        pytest.param(['--tls-cipher-suites="AB'], 'invalid argument "\\"AB" for "--tls-cipher-suites" flag: parse error on line 1, column 4: extraneous or missing " in quoted-field', id="csv-unterminated-quote"),
        pytest.param(["--tls-cipher-suites=\n"], 'invalid argument "\\n" for "--tls-cipher-suites" flag: EOF', id="csv-no-record"),
        # The legacy klog flags are checked with klog's types.
        pytest.param(["--logtostderr=maybe"], 'invalid argument "maybe" for "--logtostderr" flag: strconv.ParseBool: parsing "maybe": invalid syntax', id="legacy-bool"),
        pytest.param(["--log-dir"], "flag needs an argument: --log-dir", id="legacy-needs-argument"),
        pytest.param(["--log_file_max_size=-1"], 'invalid argument "-1" for "--log_file_max_size" flag: strconv.ParseUint: parsing "-1": invalid syntax', id="legacy-uint"),
        pytest.param(["--stderrthreshold=LOUD"], 'invalid argument "LOUD" for "--stderrthreshold" flag: strconv.ParseInt: parsing "LOUD": invalid syntax', id="legacy-severity"),
        pytest.param(["--log-backtrace-at=main"], 'invalid argument "main" for "--log-backtrace-at" flag: syntax error: expect file.go:234', id="legacy-trace-location"),
    ],
)  # fmt: skip
def test_errors_are_pflags(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as excinfo:
        parse_flags(argv)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--help=true"],
        ["--config=x", "-h"],
        ["/adapter", "--help", "--no-such-flag"],
    ],
)
def test_help_is_requested(argv: list[str]) -> None:
    with pytest.raises(HelpRequested):
        parse_flags(argv)


def test_a_flag_value_that_looks_like_help_is_a_value() -> None:
    assert flags_of(["--config", "--help"])["config"] == "--help"


@pytest.mark.parametrize(
    ("argv", "positional", "flags"),
    [
        pytest.param(["/adapter", "--secure-port=6443"], ("/adapter",), {"secure_port": 6443}, id="program-path-first"),
        pytest.param(["a", "--config=x", "b"], ("a", "b"), {"config": "x"}, id="interspersed"),
        pytest.param(["--", "--config=x", "-v4"], ("--config=x", "-v4"), {"config": "", "v": 0}, id="double-dash-ends-flags"),
        pytest.param(["-", "--config=x"], ("-",), {"config": "x"}, id="lone-dash-is-a-word"),
        pytest.param(["", "--config=x"], ("",), {"config": "x"}, id="empty-word"),
        pytest.param(["--disable-http2", "false"], ("false",), {"disable_http2": True}, id="bool-value-needs-equals"),
        pytest.param(["-test.v", "--config=x"], (), {"config": "x"}, id="go-test-flags-are-skipped"),
    ],
)  # fmt: skip
def test_positional_words(
    argv: list[str], positional: tuple[str, ...], flags: dict[str, object]
) -> None:
    result = parse(argv, FLAGS)
    assert result.positional == positional
    values = flags_of(argv)
    for dest, value in flags.items():
        assert values[dest] == value


def test_changed_flags_are_the_names_given() -> None:
    args = parse_flags(["--bind-address=0.0.0.0", "-v", "0", "--log_dir=/x", "x"])
    assert args.changed_flags == frozenset({"bind-address", "v", "log_dir"})
    assert parse_flags([]).changed_flags == frozenset()


@pytest.mark.parametrize(
    ("argv", "host"),
    [
        pytest.param(["--no-cluster"], "127.0.0.1", id="no-cluster-defaults-to-loopback"),
        pytest.param(["--no-cluster", "--bind-address=0.0.0.0"], "0.0.0.0", id="no-cluster-explicit-default"),
        pytest.param(["--no-cluster", "--bind-address", "::"], "::", id="no-cluster-explicit"),
        pytest.param([], "0.0.0.0", id="cluster-default"),
        pytest.param(["--", "--bind-address=10.0.0.1", "--no-cluster"], "0.0.0.0", id="after-double-dash-is-not-a-flag"),
    ],
)  # fmt: skip
def test_bind_address_uses_what_was_given(argv: list[str], host: str) -> None:
    assert _bind_address(parse_flags(argv)) == host


LEGACY_ARGV = [
    "--logtostderr",
    "--logtostderr=false",
    "--alsologtostderr=true",
    "--log-dir=/var/log",
    "--log_dir",
    "/tmp",
    "--log-file=/tmp/a.log",
    "--log-file-max-size=0x10",
    "--one-output",
    "--skip-headers=1",
    "--skip_log_headers",
    "--stderrthreshold=warning",
    "--stderrthreshold",
    "1",
    "--add-dir-header",
    "--log-backtrace-at=main.go:10",
    "--log_backtrace_at=",
]


def test_legacy_klog_flags_are_accepted_and_ignored_with_one_warning() -> None:
    args = parse_flags([*LEGACY_ARGV, "--config=x"])
    assert args.config == "x"
    assert flags_of(LEGACY_ARGV) == flags_of([])  # ignored
    (warning,) = args.flag_warnings
    assert warning.startswith("ignoring klog flags --logtostderr, --alsologtostderr, --log-dir, ")
    assert "--log_dir" in warning and "--log_backtrace_at" in warning
    assert "removed from the Go adapter in v0.11" in warning


def test_every_legacy_flag_has_both_spellings() -> None:
    for spec in KLOG_LEGACY_FLAGS:
        value = [] if spec.kind == "bool" else ["x.go:1" if spec.kind == "traceLocation" else "1"]
        for name in {spec.name, spec.name.replace("-", "_")}:
            assert parse_flags([f"--{name}", *value]).flag_warnings == [
                f"ignoring klog flags --{name}: deprecated, and removed from the Go adapter "
                "in v0.11; logs always go to stderr"
            ]


def test_one_warning_per_kind() -> None:
    args = parse_flags(["/adapter", "--logtostderr=true", "run", "--v=2", "it now", "--log_dir=/x"])
    assert args.flag_warnings == [
        "ignoring positional arguments: /adapter run 'it now'",
        "ignoring klog flags --logtostderr, --log_dir: deprecated, and removed from the Go "
        "adapter in v0.11; logs always go to stderr",
    ]
    assert parse_flags(["--config=x"]).flag_warnings == []


# --- Properties ------------------------------------------------------------------------

# Valid flag uses, each one or two words, and what they set.
_FLAG_USES: list[list[str]] = [
    ["--config=a.yaml"],
    ["--config", "b.yaml"],
    ["--secure-port=0x10"],
    ["--secure-port", "6443"],
    ["-v", "4"],
    ["-v6"],
    ["--v=2"],
    ["--disable-http2"],
    ["--profiling=false"],
    ["--prometheus-header", "A=1"],
    ["--prometheus-header=B=2,3"],
    ["--tls-cipher-suites=A,B"],
    ["--tls-cipher-suites", '"C,D",E'],
    ["--metrics-relist-interval", "90s"],
    ["--client-qps=2.5"],
    ["--logtostderr=true"],
    ["--log_dir", "/x"],
]

# Words pflag leaves alone: no leading dash, or a lone dash.
_WORDS = st.one_of(
    st.just("-"),
    st.just("/adapter"),
    st.text(min_size=1).filter(lambda word: not word.startswith("-")),
)


@given(
    uses=st.lists(st.sampled_from(_FLAG_USES), max_size=8),
    words=st.lists(st.lists(_WORDS, max_size=2), min_size=9, max_size=9),
)
def test_positional_words_anywhere_between_flags_change_nothing(
    uses: list[list[str]], words: list[list[str]]
) -> None:
    flags_only = [word for use in uses for word in use]
    interleaved = [*words[0]]
    for use, after in zip(uses, words[1:], strict=False):
        interleaved += [*use, *after]
    positional = [word for group in words[: len(uses) + 1] for word in group]
    assert flags_of(interleaved) == flags_of(flags_only)
    args, alone = parse_flags(interleaved), parse_flags(flags_only)
    assert args.changed_flags == alone.changed_flags
    if positional:
        expected = f"ignoring positional arguments: {shlex.join(positional)}"
        assert args.flag_warnings == [expected, *alone.flag_warnings]
    else:
        assert args.flag_warnings == alone.flag_warnings


def _outcome(argv: list[str]) -> object:
    """The parsed flags, or the error message."""
    try:
        return flags_of(argv)
    except FlagError as exc:
        return str(exc)


_VALUE_FLAGS = [spec.name for spec in FLAGS if spec.kind != "bool"]


@given(name=st.sampled_from(_VALUE_FLAGS), value=st.text())
def test_equals_and_space_forms_agree(name: str, value: str) -> None:
    assert _outcome([f"--{name}={value}"]) == _outcome([f"--{name}", value])


@given(value=st.text().filter(lambda value: not value.startswith("=")))
def test_every_form_of_v_agrees(value: str) -> None:
    expected = _outcome(["--v", value])
    assert _outcome([f"--v={value}"]) == expected
    assert _outcome(["-v", value]) == expected
    if value:  # pflag reads -v= as the value "=" (a -f=value needs a value)
        assert _outcome([f"-v={value}"]) == expected
        assert _outcome([f"-v{value}"]) == expected


@given(number=st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_ints_in_every_base(number: int) -> None:
    sign = "-" if number < 0 else ""
    for text in (
        str(number),
        f"{sign}0x{abs(number):x}",
        f"{sign}0o{abs(number):o}",
        f"{sign}0b{abs(number):b}",
    ):
        assert flags_of([f"--client-burst={text}"])["client_burst"] == number


@given(values=st.lists(st.text(alphabet=st.characters(exclude_characters='",\n\r')), min_size=1))
def test_string_slices_round_trip_through_csv(values: list[str]) -> None:
    text = ",".join(f'"{v}"' for v in values)
    assert flags_of([f"--tls-cipher-suites={text}"])["tls_cipher_suites"] == values


def test_parse_flags_returns_a_namespace_with_every_flag() -> None:
    args = parse_flags([])
    assert isinstance(args, argparse.Namespace)
    for spec in FLAGS:
        assert hasattr(args, spec.dest)
    for spec in KLOG_LEGACY_FLAGS:
        assert not hasattr(args, spec.dest)
