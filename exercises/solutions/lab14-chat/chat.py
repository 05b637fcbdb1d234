"""Lab 14: a multi-client chat server on one thread, with selectors (reference solution).

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

NICK = re.compile(r"[A-Za-z0-9_-]{1,16}")
MAX_LINE = 4096  # a client that sends more without a newline is dropped


def split_lines(buffer):
    """Split ``buffer`` (bytes) into complete lines (without b"\\n") and the unfinished rest."""
    *lines, rest = buffer.split(b"\n")
    return [line.rstrip(b"\r") for line in lines], rest


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.nick = None


def serve(host, port):
    """Chat on ``(host, port)``: NICK name first, then every line goes to every other client."""
    sel = selectors.DefaultSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    clients = {}

    def send(client, text):
        client.outbuf += text.encode("utf-8", "replace") + b"\n"
        sel.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def broadcast(sender, text):
        for other in clients.values():
            if other is not sender and other.nick is not None:
                send(other, text)

    def drop(client):
        sel.unregister(client.sock)
        client.sock.close()
        del clients[client.sock]
        if client.nick is not None:
            broadcast(client, "* %s left" % client.nick)

    def handle(client, line):
        text = line.decode("utf-8", "replace")
        if client.nick is None:
            word, _, name = text.partition(" ")
            if word != "NICK" or not NICK.fullmatch(name):
                send(client, "ERR say NICK name first (1-16 letters, digits, _ or -)")
            elif any(c.nick == name for c in clients.values()):
                send(client, "ERR nick %s is taken" % name)
            else:
                client.nick = name
                send(client, "OK %s" % name)
                broadcast(client, "* %s joined" % name)
        else:
            broadcast(client, "<%s> %s" % (client.nick, text))

    while True:
        for key, events in sel.select():
            if key.data is None:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                clients[conn] = Client(conn)
                sel.register(conn, selectors.EVENT_READ, clients[conn])
                continue
            client = key.data
            if client.sock not in clients:
                continue  # dropped earlier in this round
            try:
                if events & selectors.EVENT_WRITE and client.outbuf:
                    sent = client.sock.send(client.outbuf)
                    client.outbuf = client.outbuf[sent:]
                    if not client.outbuf:
                        sel.modify(client.sock, selectors.EVENT_READ, client)
                if events & selectors.EVENT_READ:
                    data = client.sock.recv(65536)
                    if not data:
                        drop(client)  # an unfinished line dies with its client
                        continue
                    lines, client.inbuf = split_lines(client.inbuf + data)
                    for line in lines:
                        handle(client, line)
                    if len(client.inbuf) > MAX_LINE:
                        drop(client)
            except BlockingIOError:
                pass
            except OSError:
                drop(client)


if __name__ == "__main__":
    serve("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9014)
