"""Warm starts for stage scripts: a stage skips the ~4 s that importing torch and transformers costs it.

Every DVC stage is a new Python process, and most of a short stage's time goes to imports (benchmarks/startup.py
--breakdown: torch 1.1 s, transformers' modelling stack 2.2 s). Here, the first stage script to start also starts a
server in the background: a Python process that imports the heavy third-party packages (:data:`PRELOAD`) and then
waits on a Unix socket. Each later stage script (:func:`delegate`, called by ``amad_suite.cli.run_stage``) sends
the server its command line, working directory, environment and standard streams. The server forks a child,
which runs the script as ``__main__`` exactly as ``python script.py`` would. The stage script waits, passes
SIGINT, SIGTERM and SIGHUP on to the child, and exits with the child's status.

What a fork cannot change, the server must share with the request:
- the interpreter, the installed packages (the modification times of the site-packages folders) and this file;
- the environment variables read when a process starts or a package is imported (:data:`START_ENV`: glibc's
  allocator, OpenMP, MKL, oneDNN, torch's vector kernels, Python's own, CUDA, torch, Hugging Face, tqdm).

A request that differs in any of these goes to another server, keyed by their hash. The server never imports this
project's modules, so each child runs the code on disk. The child reseeds Python's and NumPy's global generators
from the OS, as a new process would. torch's default generator is never drawn from in the server, so a child
starts from torch's fixed default seed, as a new process does. A child whose stage script is killed ends too,
and a stage script whose child is killed by a signal ends by the same signal.
A server exits after ``IDLE_S`` seconds without a request.

``AMAD_WARM=0`` turns this off. Off Linux, on a machine with a GPU (:data:`GPU_DEVICES`), or wherever a step fails
(no server yet, a socket error), the script runs in its own process as before, with no message: a warm start is
only ever a shortcut.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

SWITCH = "AMAD_WARM"  # "0" runs every stage script in its own process
CHILD = "AMAD_WARM_CHILD"  # set in a server's child for its script's delegate(), which removes it
started_warm = False  # whether this process is a server's child (set by delegate())
IDLE_S = 180.0  # a server's life without requests; env AMAD_WARM_IDLE_S overrides it
POLL_S = 0.2  # how often the server looks for children that ended
START_ENV = (
    "MALLOC_", "OMP_", "MKL_", "KMP_", "GOMP_", "OPENBLAS_", "ONEDNN_", "DNNL_", "ATEN_", "LD_", "PYTHON", "CUDA_",
    "NVIDIA_", "TORCH", "PYTORCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_", "TQDM_", "MPL", "HOME",
    "XDG_",
)  # fmt: skip
PRELOAD = (
    "numpy", "yaml", "torch", "h5py", "PIL.Image", "tokenizers", "transformers", "transformers.modeling_utils",
    "transformers.generation.utils", "transformers.models.t5.modeling_t5", "transformers.models.blip.modeling_blip",
    "transformers.models.blip.modeling_blip_text", "transformers.models.bert.tokenization_bert",
    "accelerate", "accelerate.accelerator", "dvclive", "pandas", "matplotlib.figure", "sacrebleu", "tqdm",
)  # fmt: skip
# On a machine with a GPU every stage runs in its own process: a process must not fork after CUDA (or ROCm) has
# been initialised, which a package's import may do, and a GPU stage's minutes of work make a start-up of seconds moot.
GPU_DEVICES = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd")
_HEADER = struct.Struct("!I")


def _key(env: dict[str, str]) -> str:
    """The hash of what a forked child inherits from its server and cannot change (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0{os.getuid()}\0".encode())
    digest.update(Path(__file__).read_bytes())
    for entry in sys.path:
        if entry.endswith("site-packages") and os.path.isdir(entry):
            digest.update(f"{entry}\0{os.stat(entry).st_mtime_ns}\0".encode())
    for name in sorted(env):
        if name.startswith(START_ENV):
            digest.update(f"{name}={env[name]}\0".encode())
    return digest.hexdigest()[:20]


def _socket_dir() -> Path:
    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"amad-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not a private folder of this user")
    return folder


def socket_path(env: dict[str, str]) -> Path:
    """Where the server for a process with environment ``env`` listens (``<path>.lock`` holds its pid)."""
    return _socket_dir() / f"{_key(env)}.sock"


def wait_for_server(env: dict[str, str], timeout: float = 120.0) -> bool:
    """Whether the server for ``env`` is listening within ``timeout`` seconds (it imports for a few first)."""
    deadline = time.monotonic() + timeout
    while not socket_path(env).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_server(env: dict[str, str]) -> None:
    """Stop the server for ``env``, if one runs (tests and benchmarks that started their own)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(Path(f"{socket_path(env)}.lock").read_text().split()[0]), signal.SIGTERM)


def delegate() -> None:
    """Run this stage script in a warm server's child and exit with its status; return when it cannot be done.

    Called first thing by ``run_stage``. Returns at once in a server's child, with ``AMAD_WARM=0``, off Linux, or
    when the script is not a file. With no server running for this environment it starts one in the background
    and returns, so this script imports everything itself and the next stage finds the server ready.
    """
    global started_warm
    if os.environ.pop(CHILD, None):  # a server's child; the processes it starts may be warm-started again
        started_warm = True
        return
    env = dict(os.environ)
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if env.get(SWITCH, "1") == "0" or not sys.platform.startswith("linux") or not script:
        return
    if not script.is_file() or "pytest" in sys.modules:  # tests run stage scripts in their own process (runpy)
        return
    if any(os.path.exists(device) for device in GPU_DEVICES):  # see GPU_DEVICES
        return
    spec = getattr(sys.modules["__main__"], "__spec__", None)  # set under ``python -m``
    try:
        path = socket_path(env)
    except OSError:  # no private folder for the socket: run here
        return
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(path))
    except OSError:
        with contextlib.suppress(OSError):
            _start_server(path, env)
        return
    try:
        request = {"argv": sys.argv, "script": str(script), "module": spec.name if spec else None}
        payload = json.dumps(request | {"cwd": os.getcwd(), "env": env}).encode()
        socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], [0, 1, 2])
        reply = _read_exactly(conn, 5)
    except OSError:
        conn.close()
        return
    if len(reply) < 5 or reply[:1] != b"P":  # the server did not take it: run here
        conn.close()
        return
    sys.exit(_wait(conn, int.from_bytes(reply[1:], "big")))


def _wait(conn: socket.socket, pid: int) -> int:
    """Forward signals to the child ``pid`` until it reports its exit status on ``conn``."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    status = _read_exactly(conn, 5)
    if len(status) == 5 and status[:1] == b"X":
        return int.from_bytes(status[1:], "big", signed=True)
    if len(status) == 5 and status[:1] == b"S":  # the child was killed: end the same way
        signum = int.from_bytes(status[1:], "big")
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum  # a signal that does not end a process by default
    print(
        f"error: the stage's process {pid} ended without an exit status (killed?); rerun with AMAD_WARM=0 to run it "
        "in its own process",
        file=sys.stderr,
    )
    return 1


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def _start_server(path: Path, env: dict[str, str]) -> None:
    """Start the server for ``path`` in its own session; it outlives this process and exits when idle."""
    subprocess.Popen(
        [sys.executable, "-c", "import sys; from amad_suite.warm import serve; serve(sys.argv[1])", str(path)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",
    )


def serve(path: str) -> None:
    """The server: import :data:`PRELOAD`, then fork a child per request until it is idle for ``IDLE_S``.

    ``<path>.lock`` holds the server's pid and an exclusive lock for its life, so one key has one server.
    """
    idle_s = float(os.environ.get("AMAD_WARM_IDLE_S") or IDLE_S)
    lock = open(f"{path}.lock", "a+")  # noqa: SIM115 -- held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server has this key
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            __import__(name)
    for name in [m for m in sys.modules if m.split(".")[0] in ("amad", "amad_suite")]:
        del sys.modules[name]  # the project's code is imported fresh by each child
    base_path = [p for p in sys.path if p not in ("", os.getcwd())]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(POLL_S)
    children: dict[int, socket.socket] = {}  # pid -> the server's end of its connection, to report a kill
    idle_since = time.monotonic()
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if _reap(children) and not children:
                    idle_since = time.monotonic()
                if not children and time.monotonic() - idle_since > idle_s:
                    return
                continue
            conn.settimeout(None)
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                lock.close()
                for other in children.values():
                    other.close()
                _child(conn, request, fds, base_path)  # never returns
            children[pid] = conn
            for fd in fds:
                os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _reap(children: dict[int, socket.socket]) -> bool:
    """Collect the children that ended. One killed by a signal cannot say so itself: tell its stage script, which
    then ends by the same signal, as the stage's own process would have. Returns whether any ended."""
    ended = False
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        ended = True
        conn = children.pop(pid, None)
        if conn is None:
            continue
        if os.WIFSIGNALED(status):
            with contextlib.suppress(OSError):
                conn.sendall(b"S" + os.WTERMSIG(status).to_bytes(4, "big"))
        conn.close()
    return ended


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    if len(fds) != 3 or len(data) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request without its three standard streams")
    (size,) = _HEADER.unpack(data[: _HEADER.size])
    body = data[_HEADER.size :]
    body += _read_exactly(conn, size - len(body))
    if len(body) < size:
        raise ValueError("a truncated request")
    return json.loads(body), fds


def _child(conn: socket.socket, request: dict, fds: list[int], base_path: list[str]) -> None:
    """Become the process ``python <script> <args>`` would have been, run the script, report its status, exit."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD] = "1"
        os.chdir(request["cwd"])
        _standard_streams()
        import importlib
        import random

        importlib.invalidate_caches()

        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = list(request["argv"])
        module = request.get("module")  # python -m: the working directory comes first on sys.path, as there
        sys.path[:] = [request["cwd"] if module else str(Path(request["script"]).parent), *base_path]
        conn.sendall(b"P" + os.getpid().to_bytes(4, "big"))
        threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
        code = _run_script(request["script"], module)
    finally:
        with contextlib.suppress(Exception):
            conn.sendall(b"X" + code.to_bytes(4, "big", signed=True))
        os._exit(code)


def _end_with_client(conn: socket.socket) -> None:
    """The stage script never writes after its request: end of file means it was killed, so end too."""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def _standard_streams() -> None:
    """New sys.stdin/stdout/stderr on descriptors 0-2, buffered as a new interpreter's would be."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        tty = os.isatty(fd)
        stream = open(  # noqa: SIM115 -- the interpreter's own streams
            fd, mode, encoding="utf-8", errors="backslashreplace" if fd == 2 else "strict", closefd=False,
            buffering=1 if (tty or fd == 2) and mode == "w" else -1,
        )  # fmt: skip
        if unbuffered and mode == "w":
            stream.reconfigure(write_through=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_script(script: str, module: str | None) -> int:
    """Run ``script`` (or ``module``, for ``python -m``) as ``__main__`` and return the exit status an interpreter
    would: SystemExit's code, or 1 and a traceback on another exception. Then finish as an interpreter does:
    non-daemon threads, atexit, flushes."""
    import atexit
    import runpy
    import traceback

    code = 0
    try:
        if module:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # an interpreter prints it and exits 1
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code
