"""The `prometheus-adapter` command.

`prometheus-adapter [flags]` runs the adapter with the Go adapter's flags;
`prometheus-adapter check-config ...` explains a config (see adapter.check_config).
"""

import sys
from collections.abc import Sequence

from adapter.check_config import check_config_main
from adapter.config.errors import ConfigError
from adapter.naming.rules import load_rules
from adapter.options import parse_flags, validate_flags

__all__ = ["main"]


def serve_main(argv: Sequence[str]) -> int:
    args = parse_flags(argv)
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
    print(
        f"config {compiled.file} is valid: {len(compiled.rules)} rules, "
        f"{len(compiled.external_rules)} externalRules, "
        f"{'resourceRules' if compiled.resource_rules else 'no resourceRules'}.\n"
        "Serving the metrics APIs is not implemented in this version yet; "
        "use `prometheus-adapter check-config` to inspect a config.",
        file=sys.stderr,
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check-config":
        return check_config_main(args[1:])
    return serve_main(args)
