"""Lab 14: a multi-client chat server on one thread, with selectors.

The protocol (one line each, ended by "\\n", UTF-8):

    client -> server   NICK name            first; name is 1-16 letters, digits, _ or -
    server -> client   OK name              the nick is yours
    server -> client   ERR reason           no nick yet, nick taken or invalid: try again
    client -> server   any text             once the client has a nick
    server -> others   <name> text          to every *other* client with a nick
    server -> others   * name joined        when a client gets its nick
    server -> others   * name left          when a client with a nick disconnects

Fill in the TODOs, then check your work with:

    netlab lab check 14

Try it by hand: `python chat.py 9014` in one terminal, `nc 127.0.0.1 9014`
in two or three others.
"""
import re
import selectors
import socket
import sys

NICK = re.compile(r"[A-Za-z0-9_-]{1,16}")  # what a nickname may be


def split_lines(buffer):
    """Split ``buffer`` (bytes) into complete lines (without b"\\n") and the unfinished rest.

    split_lines(b"hi\\nthere\\nhal") == ([b"hi", b"there"], b"hal")
    """
    # TODO: what does recv() give you: one line, part of one, or several?
    raise NotImplementedError("TODO: split_lines(buffer)")


def serve(host, port):
    """Chat on ``(host, port)``, one thread, one selector, many clients."""
    # TODO: a non-blocking listening socket, registered with a selector.
    # TODO: per client: its socket, the unfinished input line, pending output, its nick.
    # TODO: the loop: accept, read complete lines, handle NICK and text, broadcast.
    # TODO: a client that disconnects (even mid-line) is closed and announced; the server goes on.
    # TODO: never block on one client: what if a client is slow to read what you send it?
    raise NotImplementedError("TODO: serve(host, port)")


if __name__ == "__main__":
    serve("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9014)
    _ = (re, selectors, socket)  # you will need them
