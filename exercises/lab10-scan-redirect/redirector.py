"""Lab 10, part 2: a TCP port redirector (what "forward 80 to 8080" does).

Fill in the TODOs, then check your work with:

    netlab lab check 10

Try it:  netlab echo --tcp 9007 &   python redirector.py 9080 9007   nc 127.0.0.1 9080
"""
import socket
import sys
import threading


def pipe(src, dst):
    """Copy bytes from ``src`` to ``dst`` until ``src`` has no more to send."""
    # TODO: recv/sendall in a loop; what do you tell dst when src is done?
    raise NotImplementedError("TODO: pipe(src, dst)")


def redirect(listen_host, listen_port, target_host, target_port):
    """Accept clients on the listen address and connect each one to the target, forever."""
    # TODO: listen; for every client: connect to the target, then copy both
    # TODO: directions at the same time. What if the target is down?
    raise NotImplementedError("TODO: redirect(listen_host, listen_port, target_host, target_port)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    redirect("127.0.0.1", int(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))
    _ = (socket, threading)  # you will need them
