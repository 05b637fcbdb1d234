"""Lab 16 probe (child side, standard library only): what kind of socket open_socket() opened."""
from .runtime import student_module


def probe_open_socket(labdir):
    """Call the student's open_socket() and report the socket's family, type and protocol as numbers."""
    sock, kind = student_module(labdir, "ping").open_socket()
    try:
        return {"family": int(sock.family), "type": int(sock.type), "proto": sock.proto, "kind": kind}
    finally:
        sock.close()
