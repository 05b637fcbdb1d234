"""Lab 11 probe (child side, standard library only): the student's web server on a folder.

The grader chooses the files and their contents; this probe only writes them
into a fresh folder (and one file *outside* it, which must never be served)
and runs ``serve(host, port, root)``.
"""
import os
import tempfile

from .runtime import student_module

HOST = "127.0.0.1"


def probe_serve(labdir, port, files, outside):
    """Write ``files`` (name -> hex) under a new root, ``outside`` beside it, then serve the root."""
    base = tempfile.mkdtemp(prefix="lab11-")
    root = os.path.join(base, "www")
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(bytes.fromhex(data))
    for name, data in outside.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(bytes.fromhex(data))
    mod = student_module(labdir, "webserver")
    return {"returned": repr(mod.serve(HOST, port, root))}
