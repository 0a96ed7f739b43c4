"""What this program is: its version, the Go adapter version it stands in for, the Python
running it and the platform. `prometheus-adapter --version` prints it; `/version` answers it
in k8s.io/apimachinery's version.Info shape, which `kubectl version` and clients read."""

import platform
from functools import cache

from adapter import __version__

__all__ = ["GO_ADAPTER_VERSION", "version_info", "version_text"]

# The release whose flags, config files and answers this adapter reproduces.
GO_ADAPTER_VERSION = "v0.12.0"
# Go's GOARCH names, which version.Info's platform uses.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def _platform() -> str:
    machine = platform.machine().lower()
    return f"{platform.system().lower()}/{_GOARCH.get(machine, machine)}"


@cache
def version_info() -> dict[str, str]:
    """version.Info. custom-metrics-apiserver reports major "1", minor "0"; goVersion, the
    language runtime's version in Go, carries Python's."""
    return {
        "major": "1",
        "minor": "0",
        "gitVersion": f"v{__version__}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": _platform(),
    }


def version_text() -> str:
    return (
        f"prometheus-adapter-py v{__version__} (a drop-in for prometheus-adapter "
        f"{GO_ADAPTER_VERSION}), {platform.python_implementation()} "
        f"{platform.python_version()}, {_platform()}"
    )
