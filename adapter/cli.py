"""The `prometheus-adapter` command.

`prometheus-adapter [flags]` runs the adapter with the Go adapter's flags;
`prometheus-adapter check-config ...` explains a config (see adapter.check.report);
`prometheus-adapter explain-hpa ...` explains HPAs end to end (see adapter.hpa.command).
"""

import sys
from collections.abc import Sequence

from adapter.check.report import check_config_main
from adapter.config.errors import ConfigError
from adapter.flagparse import FlagError, HelpRequested
from adapter.hpa.command import explain_hpa_main
from adapter.logs import setup_logging
from adapter.naming.rules import load_rules
from adapter.options import build_parser, parse_flags, validate_flags
from adapter.server.run import serve
from adapter.version import version_text

__all__ = ["main"]


def serve_main(argv: Sequence[str]) -> int:
    try:
        args = parse_flags(argv)
    except HelpRequested:
        # pflag v1.0.5 prints the usage and exits 2; help asked for is a success.
        sys.stdout.write(build_parser().format_help())
        return 0
    except FlagError as exc:
        # The Go adapter parses with pflag.CommandLine (ExitOnError): it prints pflag's
        # message and its usage and exits 2 before its klog.Fatalf ("unable to parse flags",
        # exit 255) can run. Same message and exit code; a hint instead of 200 lines of usage.
        print(exc, file=sys.stderr)
        print("run 'prometheus-adapter --help' for the list of flags", file=sys.stderr)
        return 2
    if args.version:
        print(version_text())
        return 0
    for warning in args.flag_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    errors = validate_flags(args)
    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        compiled = load_rules(args.config)
    except ConfigError as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
        return 1
    for warning in compiled.warnings:
        print(f"warning: {warning.format(compiled.file)}", file=sys.stderr)
    if compiled.config.rules and args.metrics_max_age < args.metrics_relist_interval:
        print("error: max age must not be less than relist interval", file=sys.stderr)
        return 1
    setup_logging(args.v)
    return serve(args, compiled)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check-config":
        return check_config_main(args[1:])
    if args and args[0] == "explain-hpa":
        return explain_hpa_main(args[1:])
    return serve_main(args)
