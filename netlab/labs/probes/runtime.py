"""The child side of every check: runs *inside* the sandbox, beside the student's code.

This file and the ``probes/labNN.py`` files use the standard library only:
the sandbox hides netlab, so the grader sends their source text to the child
on its standard input together with the request::

    {"sources": {"runtime": "...", "lab08": "..."}, "probe": "lab08:probe_dissect",
     "labdir": "/home/student/lab08-packets", "args": {...}}

The child runs the probe and writes one JSON document to what was its
standard output: ``{"ok": true, "value": ...}`` or ``{"ok": false, "error":
..., "message": ..., "where": ...}``. Student code runs in this very process,
so it *could* write that document itself: the grader therefore never trusts a
verdict from here. A probe only reports raw observations (what a student
function returned or raised); the grader judges them against answers it
computed on its own, and measures times and traffic with its own peers.
Nothing here holds an expected answer.
"""
import importlib.util
import json
import os
import sys
import traceback
import types

__all__ = ["calls", "describe_exception", "imports", "main", "plain", "serve", "student_module"]

PACKAGE = "netlab_probes"  # the name the probe sources get inside the child


def describe_exception(exc, labdir):
    """A short account of ``exc``: its type, message and the student line that raised it."""
    where = ""
    labdir = os.path.realpath(labdir)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.realpath(frame.filename).startswith(labdir + os.sep):
            where = "%s:%s" % (os.path.basename(frame.filename), frame.lineno)
            break
    if isinstance(exc, SyntaxError) and exc.filename:
        where = "%s:%s" % (os.path.basename(exc.filename), exc.lineno)
    return {"ok": False, "error": type(exc).__name__, "message": str(exc)[:2000], "where": where}


def student_module(labdir, name):
    """Import the student's ``name``.py from ``labdir``."""
    path = os.path.join(labdir, name + ".py")
    if not os.path.exists(path):
        raise FileNotFoundError("%s.py is missing from your lab folder "
                                "(start from the starter: netlab lab init N)" % name)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == path:
        return sys.modules[name]
    if labdir not in sys.path:
        sys.path.insert(0, labdir)  # so the student's files can import each other
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def plain(value):
    """Tuples to lists, bytes to {"bytes": hex}: JSON that keeps what matters."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (list, tuple)) else repr(k): plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return {"repr": repr(value)[:200], "type": type(value).__name__}


def unplain(value):
    """{"bytes": hex} back to bytes (arguments from the grader)."""
    if isinstance(value, dict) and set(value) == {"bytes"}:
        return bytes.fromhex(value["bytes"])
    return value


def calls(labdir, module, calls):
    """Call ``module.func(*args)`` for each ``[func, args]``; one outcome dict per call."""
    mod = student_module(labdir, module)
    out = []
    for func, args in calls:
        try:
            out.append({"ok": True, "value": plain(getattr(mod, func)(*[unplain(a) for a in args]))})
        except Exception as exc:  # noqa: BLE001 - the outcome is data for the grader
            out.append(describe_exception(exc, labdir))
    return out


def imports(labdir, modules):
    """Import each student module once (the grader's pre-flight); one outcome per module."""
    out = []
    for name in modules:
        try:
            student_module(labdir, name)
            out.append({"ok": True, "value": name})
        except Exception as exc:  # noqa: BLE001 - the checks report the details
            out.append(describe_exception(exc, labdir))
    return out


def serve(labdir, module, func, args, tick=0.0):
    """Run the student's server function ``module.func(*args)`` until the grader stops it.

    ``tick`` > 0 interrupts the process with a signal every ``tick`` seconds:
    a blocking ``send()`` interrupted after part of its data returns that
    part, as it may on any busy machine, so a server relying on ``send()``
    sending everything is caught (``sendall()`` carries on by itself).
    """
    if tick:
        import signal
        signal.signal(signal.SIGALRM, lambda *_: None)
        signal.setitimer(signal.ITIMER_REAL, tick, tick)
    mod = student_module(labdir, module)
    return {"returned": plain(getattr(mod, func)(*[unplain(a) for a in args]))}


def loopback_only():
    """Practice mode (no private network): refuse to send anywhere but loopback.

    The sandbox's network namespace makes an off-host connect() fail with
    ENETUNREACH by itself; without it, this does the same from inside the
    process, so a lab 10 scanner that forgets to refuse 192.0.2.1 sends nothing.
    """
    import errno
    import ipaddress
    import socket

    def allowed(address):
        if not isinstance(address, tuple) or not address:
            return True  # AF_UNIX and friends
        try:
            return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
        except ValueError:
            try:
                return ipaddress.ip_address(socket.gethostbyname(address[0])).is_loopback
            except (OSError, ValueError):
                return False

    def refuse(address):
        raise OSError(errno.ENETUNREACH, "Network is unreachable (practice mode: loopback only): %r"
                      % (address,))

    base = socket.socket

    class GuardedSocket(base):
        def connect(self, address):
            if not allowed(address):
                refuse(address)
            return base.connect(self, address)

        def connect_ex(self, address):
            if not allowed(address):
                return errno.ENETUNREACH
            return base.connect_ex(self, address)

        def sendto(self, data, *args):
            if not allowed(args[-1]):
                refuse(args[-1])
            return base.sendto(self, data, *args)

    socket.socket = GuardedSocket


def _load_sources(sources):
    """Make ``netlab_probes.NAME`` modules of the probe sources sent by the grader."""
    package = types.ModuleType(PACKAGE)
    package.__path__ = []
    sys.modules[PACKAGE] = package
    # This file runs as __main__ (python -c SOURCE); the lab probes import it
    # as ``from .runtime import ...``.
    runtime = types.ModuleType(PACKAGE + ".runtime")
    runtime.__dict__.update({k: v for k, v in globals().items() if not k.startswith("__")})
    sys.modules[runtime.__name__] = runtime
    mods = {"runtime": runtime}
    for name, text in sources.items():
        mod = types.ModuleType(PACKAGE + "." + name)
        mod.__package__ = PACKAGE
        sys.modules[mod.__name__] = mod
        exec(compile(text, "<grader probe %s>" % name, "exec"), mod.__dict__)
        mods[name] = mod
    return mods


def main():
    request = json.load(sys.stdin)
    # Keep the result channel apart from the student's output: fd 1 becomes
    # a copy of stderr (what the student prints), the result goes to a copy
    # of the original stdout.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if request.get("loopback_only"):
        loopback_only()
    mods = _load_sources(request.get("sources", {}))
    where, _, name = request["probe"].rpartition(":")
    probe = getattr(mods[where or "runtime"], name)
    labdir = request["labdir"]
    me = os.getpid()
    try:
        payload = {"ok": True, "value": probe(labdir, **request.get("args", {}))}
    except BaseException as exc:  # noqa: BLE001 - everything the student code raises is a result
        payload = describe_exception(exc, labdir)
    if os.getpid() != me:
        os._exit(0)  # a process the student forked came back up here: only the probe answers
    try:
        result.write(json.dumps(payload, default=repr))
        result.flush()
    except (OSError, ValueError) as exc:
        sys.stderr.write("netlab: could not write the result: %s\n" % exc)
    os._exit(0)  # threads the student left running must not keep the probe alive


if __name__ == "__main__":
    main()
