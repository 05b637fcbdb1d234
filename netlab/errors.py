"""Errors that the command line turns into one clear line on stderr."""

__all__ = ["NetlabError", "UsageError", "DecodeError"]


class NetlabError(Exception):
    """A runtime problem with a message fit for a learner: exit status 1.

    The message names the problem *and* the way out, e.g.
    ``port 7007/tcp is in use (find the owner with: netlab netstat --listening)``.
    """

    exit_code = 1


class UsageError(NetlabError):
    """The command line itself is wrong: exit status 2."""

    exit_code = 2


class DecodeError(ValueError):
    """Bytes that do not form the header they claim to be.

    Both packet backends raise exactly this class, with the same message, so a
    caller never needs to know which backend is live.
    """
