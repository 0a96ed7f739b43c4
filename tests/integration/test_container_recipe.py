"""The Dockerfile's recipe, checked without a Docker engine.

scripts/container-recipe.sh performs the Dockerfile's commands into a directory standing in
for the image's root filesystem. The adapter is then started as the image would start it:
the ENTRYPOINT from the runtime venv, as uid/gid 65532 with no supplementary groups, with
the venv and the "ConfigMap" owned by root and read-only (0555/0444), and HOME, TMPDIR, the
working directory and --cert-dir on an "emptyDir" owned by 65532, without the dev venv.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from harness.container import IMAGE_GID as GID
from harness.container import IMAGE_UID as UID
from harness.container import RECIPE, ImageRoot, user_switch
from harness.ports import free_port, wait_for_http

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

START_TIMEOUT = 60
STOP_TIMEOUT = 20

# The Dockerfile's commands and the recipe's, with "$WHEELS" for /wheels, "$VENV" for
# /opt/adapter, "$DIR" for the image's root and "$PYTHON" for the image's python (see
# _to_recipe).
MIRRORED_COMMANDS = (
    "pip wheel --no-cache-dir --wheel-dir /wheels .",
    "python -m venv /opt/adapter",
    "/opt/adapter/bin/pip install --no-cache-dir --no-index --find-links /wheels prometheus-adapter-py",
    "/opt/adapter/bin/pip uninstall -y pip setuptools",
    "ln -s opt/adapter/bin/prometheus-adapter /adapter",
)
# Lines of the Dockerfile that the container mimicry below relies on.
DOCKERFILE_LINES = (
    "FROM ${PYTHON_IMAGE} AS build",
    "ARG PYTHON_IMAGE=python:3.11-slim",
    "COPY pyproject.toml README.md ./",
    "COPY adapter/ adapter/",
    "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/adapter/bin:$PATH HOME=/tmp",
    "USER 65532:65532",
    "WORKDIR /tmp",
    'ENTRYPOINT ["prometheus-adapter"]',
    'CMD ["--secure-port=6443", "--cert-dir=/tmp/cert", "--config=/etc/adapter/config.yaml"]',
)
# Nothing of the test tooling may end up in the runtime venv.
NOT_RUNTIME = (
    "pip",
    "setuptools",
    "wheel",
    "pytest",
    "mypy",
    "ruff",
    "gotpl",
    "kubernetes-validate",
)


def _to_recipe(command: str) -> str:
    command = re.sub(r"^python ", '"$PYTHON" ', command)
    command = re.sub(r" /adapter$", ' "$DIR"/adapter', command)
    command = command.replace("/opt/adapter", '"$VENV"').replace("/wheels", '"$WHEELS"')
    return command


def _listing(top: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """Every entry under top (not following symlinks): mode, owner, group, size, mtime."""
    entries: dict[str, tuple[int, int, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            entries[os.path.relpath(path, top)] = (
                info.st_mode,
                info.st_uid,
                info.st_gid,
                info.st_size,
                info.st_mtime_ns,
            )
    return entries


def _owned_by_image_user(top: Path) -> set[str]:
    """Top-level entries of a shared temp dir that the image's user created."""
    try:
        return {
            entry.path
            for entry in os.scandir(top)
            if entry.stat(follow_symlinks=False).st_uid == UID
        }
    except OSError:
        return set()


def test_dockerfile_and_recipe_agree() -> None:
    dockerfile = DOCKERFILE.read_text()
    recipe = RECIPE.read_text()
    for line in DOCKERFILE_LINES:
        assert line in dockerfile.splitlines(), f"Dockerfile lost the line {line!r}"
    for command in MIRRORED_COMMANDS:
        assert command in dockerfile, f"Dockerfile lost the command {command!r}"
        assert _to_recipe(command) in recipe, (
            f"scripts/container-recipe.sh no longer mirrors {command!r} "
            f"(expected {_to_recipe(command)!r})"
        )
    # Wheels only, from the build stage; the final stage compiles and downloads nothing.
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in dockerfile
    assert "--no-index" in dockerfile
    assert dockerfile.count("FROM ") == 2
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!adapter/"]


def test_recipe_installs_only_runtime_wheels(image_root: ImageRoot) -> None:
    wheels = sorted(p.name for p in (image_root.root / "wheels").iterdir())
    assert wheels, "no wheels built"
    assert all(name.endswith(".whl") for name in wheels), wheels
    assert any(name.startswith("prometheus_adapter_py-") for name in wheels), wheels
    site = next((image_root.venv / "lib").glob("python3.*/site-packages"))
    installed = {
        re.sub(r"[-_.]+", "-", p.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        for p in site.glob("*.dist-info")
    }
    assert "prometheus-adapter-py" in installed
    assert {
        "pyyaml",
        "google-re2",
        "aiohttp",
        "orjson",
        "cryptography",
        "prometheus-client",
    } <= installed
    assert not installed & set(NOT_RUNTIME), installed
    assert not (image_root.venv / "bin" / "pip").exists()
    # The harness and tests are not part of the wheel.
    assert not (site / "harness").exists()
    assert not (site / "tests").exists()
    assert (site / "adapter" / "py.typed").exists()


async def test_adapter_starts_as_the_image_would(image_root: ImageRoot, tmp_path: Path) -> None:
    prefix, preexec = user_switch(UID, GID)
    # The emptyDir on /tmp: owned by the image's user, the only place it may write.
    emptydir = Path(tempfile.mkdtemp(prefix="container-emptydir-", dir="/tmp"))
    process: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "adapter.log"
    try:
        os.chown(emptydir, UID, GID)
        os.chmod(emptydir, 0o700)
        cert_dir = emptydir / "cert"
        port = free_port()
        # The whole image root: venv, ConfigMap, wheels and build context.
        before = _listing(image_root.root)
        shared_tmp_before = {
            d: _owned_by_image_user(d) for d in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
        }
        env = image_root.env(emptydir)  # nothing of the dev venv or this shell
        command = [
            *prefix,
            str(image_root.entrypoint),  # ENTRYPOINT ["prometheus-adapter"]
            "--no-cluster",
            f"--secure-port={port}",
            f"--cert-dir={cert_dir}",
            f"--config={image_root.config}",
            "--prometheus-url=http://127.0.0.1:1",
        ]
        started = time.monotonic()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=emptydir,  # WORKDIR /tmp
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,  # noqa: PLW1509 - only when setpriv is missing
            )

        def log_text() -> str:
            return log_path.read_text(errors="replace")[-4000:]

        ca = cert_dir / "apiserver.crt"
        deadline = time.monotonic() + START_TIMEOUT
        while not ca.exists():
            assert process.poll() is None, (
                f"adapter exited with {process.returncode}:\n{log_text()}"
            )
            assert time.monotonic() < deadline, f"no certificate in {cert_dir}:\n{log_text()}"
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(ca))
        url = f"https://127.0.0.1:{port}/livez"
        try:
            await wait_for_http(url, timeout=max(deadline - time.monotonic(), 1), ssl=context)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{log_text()}") from error
        live_seconds = time.monotonic() - started
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=context) as response,
        ):
            assert response.status == 200
            assert (await response.text()).strip() == "ok"

        # The process (setpriv execs the adapter, so the pid is the same) runs as 65532.
        status = Path(f"/proc/{process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split() == [str(UID)] * 4, fields["Uid"]
        assert fields["Gid"].split() == [str(GID)] * 4, fields["Gid"]
        assert fields["Groups"].split() == [], fields["Groups"]
        # It runs the venv's entrypoint on the system interpreter, not the dev venv.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert str(image_root.entrypoint).encode() in cmdline, cmdline
        assert not os.readlink(f"/proc/{process.pid}/exe").startswith(sys.prefix)

        # Stops cleanly on SIGTERM, as the kubelet stops it.
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"adapter ignored SIGTERM:\n{log_text()}") from error
        assert code == 0, f"adapter exited with {code} on SIGTERM:\n{log_text()}"

        # Written: the emptyDir only (the certificate, as the image's user).
        assert {p.name for p in cert_dir.iterdir()} >= {"apiserver.crt", "apiserver.key"}
        for path in cert_dir.iterdir():
            assert path.stat().st_uid == UID, path
        after = _listing(image_root.root)
        created = sorted(set(after) - set(before))
        changed = sorted(k for k in before if k in after and after[k] != before[k])
        removed = sorted(set(before) - set(after))
        assert not (created or changed or removed), (created[:20], changed[:20], removed[:20])
        assert not [p for p in image_root.venv.rglob("__pycache__") if p.stat().st_uid == UID]
        for shared, owned in shared_tmp_before.items():
            new = _owned_by_image_user(shared) - owned - {str(emptydir)}
            assert not new, f"the adapter wrote outside the emptyDir: {sorted(new)}"
        print(
            f"recipe {image_root.recipe_seconds:.1f}s, live after {live_seconds:.2f}s as uid {UID}"
        )
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(emptydir, ignore_errors=True)
