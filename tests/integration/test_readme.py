"""The README's local path and `scripts/demo --keep`, followed as a new user follows them.

A copy of the checkout (its tracked and unignored files, as a fresh clone has them) and an
empty home directory; then, in that copy, the README's "Try it locally" code blocks run in
order as written, and the commands `scripts/demo --keep` prints run as printed. Nothing is
substituted: the block that runs until stopped is started in the background, as a second
terminal would be, and stopped with SIGINT, as Ctrl-C stops it. At the end nothing started
from the copy may still run.

Each test prints its timeline (seconds, silent gap, line); `pytest -s` shows it.
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.ports import port_is_free

ROOT = Path(__file__).resolve().parents[2]
BACKGROUND = "<!-- readme-test: runs until stopped -->"
SECTION = "## Try it locally"
ADAPTER_PORT = 6443  # the README's


def readme_blocks(text: str) -> list[tuple[str, bool]]:
    """The section's ```sh blocks, dedented, each with whether it runs until stopped."""
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = []
    for match in re.finditer(r"^( *)```sh\n(.*?)^\1```$", section, re.M | re.S):
        indent = len(match.group(1))
        body = "".join(line[indent:] for line in match.group(2).splitlines(keepends=True))
        before = section[: match.start()].rstrip().splitlines()[-1].strip()
        blocks.append((body, before == BACKGROUND))
    return blocks


def test_readme_blocks_are_found() -> None:
    blocks = readme_blocks((ROOT / "README.md").read_text())
    assert [background for _, background in blocks] == [False, False, True, False, False]
    assert "scripts/demo --keep" in blocks[1][0] and blocks[-1][0] == "scripts/demo --stop\n"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new user's clone and home directory; afterwards, nothing started from it runs."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to copy")
    base = tmp_path_factory.mktemp("new-user")
    repo, home = base / "prometheus-adapter", base / "home"
    home.mkdir()
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    yield repo
    assert _running_from(base) == [], "processes left running"


def _running_from(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "VIRTUAL_ENV"))}
    env["HOME"] = str(repo.parent / "home")
    env.pop("REUSE_VENV", None)
    return env


def run_script(repo: Path, script: str, timeout: float = 600) -> tuple[int, str]:
    """Run `script` with bash in `repo`; print and return its output with a timeline."""
    began = last = time.monotonic()
    lines = []
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=repo,
        env=_env(repo),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic()
            print(f"{now - began:6.1f} (+{now - last:4.1f}) {line}", end="")
            lines.append(line)
            last = now
            if now - began > timeout:
                process.kill()
        code = process.wait()
    return code, "".join(lines)


def test_demo_keep_then_the_printed_commands(checkout: Path) -> None:
    code, out = run_script(checkout, "scripts/demo --keep")
    assert code == 0, out
    try_these = out[out.index("\nTry:\n") + 6 : out.index("\nStop it:\n")]
    commands = [c.strip() for c in re.split(r"(?<!\\)\n", try_these.strip())]
    stop = out[out.index("\nStop it:\n") + 10 :].strip()
    assert len(commands) == 5 and stop == "scripts/demo --stop"
    try:
        for command in commands:
            code, answer = run_script(checkout, command, timeout=60)
            assert code == 0, f"{command}\n{answer}"
            if "curl" in command:
                assert '"name": "web-2"' in answer and '"value": "2"' in answer
            elif " top pod" in command:
                assert re.search(r"web-0\s+125m\s+64Mi", answer), answer
            elif "check-config" in command:
                assert "  status       200" in answer and '{pod="web-1"} 1' in answer
            else:
                assert answer.startswith("{")
    finally:
        code, out = run_script(checkout, stop, timeout=60)
    assert code == 0 and "stopped" in out, out
    assert not (checkout / ".demo").exists()
    assert _running_from(checkout) == []


def test_readme_local_path_as_written(checkout: Path) -> None:
    if not port_is_free(ADAPTER_PORT):
        pytest.skip(f"port {ADAPTER_PORT}, which the README uses, is taken here")
    script = ["set -euo pipefail"]
    for index, (block, background) in enumerate(
        readme_blocks((checkout / "README.md").read_text())
    ):
        if block.strip() == "scripts/demo --stop":
            # Step 5: Ctrl-C in the adapter's terminal, then the block.
            script += ['kill -INT "$ADAPTER"', 'wait "$ADAPTER" || true']
        script.append(f"echo '## README block {index + 1}'")
        if background:
            script += [
                f"( {block.strip()} ) > adapter.log 2>&1 &",
                "ADAPTER=$!",
                # The adapter says how to query it once it serves.
                "for _ in $(seq 600); do grep -q 'query it with' adapter.log && break;"
                ' kill -0 "$ADAPTER" || { cat adapter.log; exit 1; }; sleep 0.1; done',
                "cat adapter.log",
            ]
        else:
            script.append(block)
    code, out = run_script(checkout, "\n".join(script))
    assert code == 0, out
    assert "Successfully installed" in out  # pip, into the new virtualenv
    assert re.search(r'"name": "web-1".*?"value": "1"', out, re.S), out
    assert '"metricName": "queue_depth"' in out
    assert re.search(r"web-2\s+500m\s+128Mi", out), out
    assert "  status       200" in out
    assert not (checkout / ".demo").exists()
    assert _running_from(checkout.parent) == []


def test_no_demo_stack_left_to_stop(checkout: Path) -> None:
    code, out = run_script(checkout, "scripts/demo --stop", timeout=120)
    assert code == 0 and "no demo stack is running" in out
