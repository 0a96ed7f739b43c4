"""Logging set up like the Go adapter's klog: one line per record on stderr, verbosity by --v.

--v=0..4: info and above; --v=5: debug; --v>=6: also every request served and every
Prometheus request (as the Go adapter logs Prometheus requests at --v=6). Secrets (tokens,
keys, Authorization headers) are never logged by any module.
"""

import logging
import sys

__all__ = ["setup_logging"]

_FORMAT = "%(levelname).1s%(asctime)s.%(msecs)03d %(process)d %(name)s] %(message)s"


def setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%m%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity >= 5 else logging.INFO)
    detail = logging.DEBUG if verbosity >= 6 else logging.INFO
    logging.getLogger("adapter.access").setLevel(detail)
    logging.getLogger("adapter.prometheus").setLevel(detail)
    # aiohttp's own access log duplicates ours.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
