"""call_monitor's Python telemetry wrapper (``FN_TELEMETRY=1``).

With ``FN_TELEMETRY=1`` in the environment, importing this package (or the
fn_registry package calling :func:`install`) wraps every public function of
the registry modules a process imports (``fn_registry.<domain>`` and
``fn_registry.<domain>.<name>``) and records each call: the function id
(``<name>_py_<domain>``, as call_monitor names it), when it started, how long
it took, whether it raised and the exception's class, and a keyed hash of its
arguments (HMAC-SHA-256 under the daemon's ``<spool>/args.key``, of a bounded
``repr``) — never the argument values.

Calls are spooled as envelope-v1 ``FunctionCall`` lines with the hook's
writer protocol, to the spool named by ``CALL_MONITOR_SPOOL`` and tagged with
``CALL_MONITOR_SESSION_ID``; call_monitor's hook exports both into every
Claude Code session's Bash commands. Without a spool nothing is recorded.

It never changes what the user's code does: a wrapped function returns and
raises exactly what it did, and a recording problem (no spool, a read-only
one, a full disk) is swallowed. Calls made inside another registry function
are not recorded (only the calls the script itself made); generator
functions are left unwrapped. Lines are written in batches of up to
``FLUSH_EVERY`` calls and at exit; a process that dies by a signal loses its
unwritten batch. At most ``MAX_CALLS`` calls per process are recorded.
"""

import atexit
import functools
import hashlib
import hmac
import importlib.abc
import inspect
import json
import os
import reprlib
import socket
import stat
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from . import _spool

__all__ = ["install", "installed", "flush", "function_id"]
__version__ = "0.14.0"

ENABLE_VAR = "FN_TELEMETRY"
SESSION_VAR = "CALL_MONITOR_SESSION_ID"
SPOOL_VAR = "CALL_MONITOR_SPOOL"
PACKAGE_VAR = "FN_TELEMETRY_PACKAGE"
KEY_FILE = "args.key"
FLUSH_EVERY = 100
MAX_CALLS = 10_000
_WRAPPED = "__call_monitor_wrapped__"

_lock = threading.Lock()
_local = threading.local()
_state = {"installed": False, "recorded": 0, "key": None, "key_read": False}
_pending = []
_args_repr = reprlib.Repr()
_args_repr.maxstring = 120
_args_repr.maxother = 120
_args_repr.maxlong = 60


def enabled():
    return os.environ.get(ENABLE_VAR, "") not in ("", "0", "false", "no")


def package():
    return os.environ.get(PACKAGE_VAR) or "fn_registry"


def function_id(module_name, function_name):
    """The registry id of `function_name` defined in `module_name`, or None
    when the module is not a registry module (``<package>.<domain>[...]``)."""
    parts = module_name.split(".")
    if len(parts) < 2 or parts[0] != package() or function_name.startswith("_"):
        return None
    return "%s_py_%s" % (function_name, parts[1])


def _now_text(seconds):
    t = datetime.fromtimestamp(seconds, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def _key(spool):
    """The daemon's args_hash key, read once; None when unusable (the
    wrapper never creates it: the daemon does)."""
    if not _state["key_read"]:
        _state["key_read"] = True
        try:
            path = os.path.join(spool, KEY_FILE)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                st = os.fstat(fd)
                data = os.read(fd, 64)
            finally:
                os.close(fd)
            if st.st_mode & 0o077 == 0 and stat.S_ISREG(st.st_mode) and len(data) == 32:
                _state["key"] = data
        except OSError:
            pass
    return _state["key"]


def _args_hash(spool, fid, args, kwargs):
    key = _key(spool)
    if key is None:
        return None
    try:
        text = _args_repr.repr((args, sorted(kwargs.items())))
    except Exception:
        text = "<unrepresentable>"
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in ("heredoc", fid, text):
        data = part.encode("utf-8", "surrogatepass")
        mac.update(len(data).to_bytes(8, "little"))
        mac.update(data)
    return mac.hexdigest()[:32]


def _record(fid, started, duration, error, args, kwargs):
    spool = os.environ.get(SPOOL_VAR)
    if not spool:
        return
    with _lock:
        if _state["recorded"] >= MAX_CALLS:
            return
        _state["recorded"] += 1
    event = {
        "hook_event_name": "FunctionCall",
        "origin": "wrapper",
        "function_id": fid,
        "started_at": _now_text(started),
        "duration_ms": max(0, int(round(duration * 1000))),
        "success": error is None,
    }
    session = os.environ.get(SESSION_VAR)
    if session:
        event["session_id"] = session
    if error is not None:
        event["error_class"] = type(error).__name__
    digest = _args_hash(spool, fid, args, kwargs)
    if digest:
        event["args_hash"] = digest
    envelope = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "ts": _now_text(time.time()),
        "host": socket.gethostname(),
        "event": event,
    }
    line = json.dumps(envelope, separators=(",", ":")).encode() + b"\n"
    with _lock:
        _pending.append(line)
        full = len(_pending) >= FLUSH_EVERY
    if full:
        flush()


def flush():
    """Writes the calls recorded so far (one write(2)); never raises."""
    with _lock:
        data = b"".join(_pending)
        _pending.clear()
    spool = os.environ.get(SPOOL_VAR)
    if data and spool:
        try:
            _spool.append(spool, data)
        except Exception:
            pass


def _begin():
    """The start of a measured call, or None inside another registry call
    (only the calls the script itself makes are recorded)."""
    if getattr(_local, "depth", 0):
        return None
    _local.depth = 1
    return time.time(), time.perf_counter()


def _end(fid, begun, error, args, kwargs):
    if begun is not None:
        _local.depth = 0
        _safely(fid, begun[0], time.perf_counter() - begun[1], error, args, kwargs)


def _wrap(fn, fid):
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            begun, error = _begin(), None
            try:
                return await fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                _end(fid, begun, error, args, kwargs)

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            begun, error = _begin(), None
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                _end(fid, begun, error, args, kwargs)

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _safely(fid, started, duration, error, args, kwargs):
    try:
        _record(fid, started, duration, error, args, kwargs)
    except Exception:
        pass


def _wrap_module(module):
    """Wraps the public functions `module` defines itself."""
    name = getattr(module, "__name__", "")
    for attr, value in list(vars(module).items()):
        if not inspect.isfunction(value) or getattr(value, _WRAPPED, False):
            continue
        if value.__module__ != name or inspect.isgeneratorfunction(value):
            continue
        fid = function_id(name, attr)
        if fid is not None:
            try:
                setattr(module, attr, _wrap(value, fid))
            except Exception:
                pass


class _WrappingLoader(importlib.abc.Loader):
    """Runs the real loader, then wraps the module's functions before any
    ``from ... import`` binds them."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _wrap_module(module)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _RegistryFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(package() + "."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _WrappingLoader(spec.loader)
        return spec


def install():
    """Starts measuring registry calls in this process (idempotent). Does
    nothing unless ``FN_TELEMETRY=1``. Returns whether it is installed."""
    if _state["installed"]:
        return True
    if not enabled():
        return False
    _state["installed"] = True
    sys.meta_path.insert(0, _RegistryFinder())
    for name, module in list(sys.modules.items()):
        if name.startswith(package() + ".") and module is not None:
            _wrap_module(module)
    atexit.register(flush)
    return True


def installed():
    return _state["installed"]


install()
