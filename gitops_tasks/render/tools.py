"""Running an external rendering tool (kustomize, helm, the Helm engine helper, plugins).

Called by the kustomize, helm and plugin renderers. One function, `run`, that owns the hard
parts of running untrusted work from a worker process:

- the tool runs in its own process group, so a timeout kills it *and* everything it spawned
  (a plugin's `sh -c "... | ..."` must not leave orphans holding the worker's pipes);
- stdout and stderr are capped while they are read, so a runaway template cannot fill memory;
- the environment is built from scratch: the worker's own variables (Redis URL, cloud
  credentials, KUBECONFIG) never reach a tool from Git.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import RenderError, ToolTimeout

# How much of stderr goes into an error message: enough for the tool's own error, not a novel.
STDERR_TAIL = 4000
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# A tool's stderr is diagnostics only; it never needs as much room as its output.
_MAX_STDERR = 1024 * 1024


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self, limit: int = STDERR_TAIL) -> str:
        text = self.stderr.decode("utf-8", "replace").strip()
        return text if len(text) <= limit else "..." + text[-limit:]


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment a tool sees: PATH, a private HOME/TMPDIR, a UTF-8 locale, `extra`.

    PATH is the worker's (tools are found the way an operator installed them); HOME points into
    the scratch dir so tools that write caches (helm, kustomize) never share or keep state.
    """
    env = {
        "PATH": os.environ.get("PATH", _DEFAULT_PATH),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    tool: str,
    app: str,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_output: int,
    stdin: bytes | None = None,
) -> ToolResult:
    """Run `argv` to completion and return its exit status and output; never raise on exit code.

    Raises ToolTimeout (after killing the process group) when it runs past `timeout`, and
    RenderError when it cannot start or its stdout passes `max_output` bytes.
    """
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE if stdin else
            subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
        )
    except OSError as exc:
        raise RenderError(f"cannot run {tool} ({argv[0]}): {exc.strerror or exc}",
                          app=app) from exc
    deadline = time.monotonic() + timeout
    try:
        stdout, stderr, outcome = _collect(proc, deadline, max_output, stdin or b"")
    finally:
        # Whatever happened, nothing of the tool may survive: kill the group before reaping,
        # while the leader's pid (the group id) cannot have been reused.
        _kill_group(proc)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if outcome == _OVERFLOW:
        raise RenderError(f"{tool} produced more than {max_output} bytes of output", app=app)
    if outcome == _TIMEOUT:
        raise ToolTimeout(f"{tool} did not finish within {timeout:g}s and was killed", app=app)
    return ToolResult(proc.returncode, stdout, stderr)


_DONE, _OVERFLOW, _TIMEOUT = "done", "overflow", "timeout"


def _collect(proc: subprocess.Popen[bytes], deadline: float, max_output: int,
             stdin: bytes) -> tuple[bytes, bytes, str]:
    """Feed stdin and read both pipes until EOF and exit, the deadline, or the output cap.

    Everything goes through one select loop, so a tool that neither reads its input nor exits
    is still bounded by the deadline. Returns (stdout, stderr, outcome), outcome being _DONE,
    _OVERFLOW or _TIMEOUT.
    """
    assert proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    pending = memoryview(stdin)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE, None)
    exited = False
    try:
        while any(key.data is not None for key in sel.get_map().values()):
            now = time.monotonic()
            if now >= deadline:
                return bytes(out), bytes(err), _TIMEOUT
            if not exited and _has_exited(proc):
                exited = True
                # The tool is done; anything still holding its pipes is a straggler it
                # spawned (a backgrounded child). Kill the group so the pipes reach EOF.
                _kill_group(proc)
            for key, _ in sel.select(timeout=min(0.05, deadline - now)):
                if key.data is None:
                    pending = _feed(sel, key, pending)
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf: bytearray = key.data
                buf += chunk
                if buf is out and len(out) > max_output:
                    return bytes(out), bytes(err), _OVERFLOW
                if buf is err and len(err) > _MAX_STDERR:
                    # Keep the tail, where tools print the error that matters.
                    del err[: len(err) - _MAX_STDERR]
        # Both pipes closed: wait for the exit status, still bounded by the deadline.
        while not _has_exited(proc):
            if time.monotonic() >= deadline:
                return bytes(out), bytes(err), _TIMEOUT
            time.sleep(0.005)
        return bytes(out), bytes(err), _DONE
    finally:
        sel.close()


def _feed(sel: selectors.BaseSelector, key: selectors.SelectorKey,
          pending: memoryview) -> memoryview:
    """Write what the pipe takes; close it when all is written or the tool stopped reading."""
    try:
        written = os.write(key.fd, pending[:65536])
    except BlockingIOError:
        return pending
    except (BrokenPipeError, OSError):
        written = len(pending)
    pending = pending[written:]
    if not pending:
        sel.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
    return pending


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, *without* reaping it (its pid stays reserved)."""
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
