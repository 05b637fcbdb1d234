"""The lossy link, sans-I/O: what happens to each datagram on a bad network.

UDP is a letter: it may be lost, delivered twice or overtaken by a later one,
and the sender is never told. :class:`LossyLink` decides those fates for one
direction of traffic; it never touches a socket or reads a clock, so a lab
or a test can study it with plain lists. ``netlab redirect`` puts one link in
each direction of its UDP relay and does the sending and the waiting.

Exactly three random numbers are drawn per datagram, whatever the
probabilities, from a generator seeded with ``seed``: the same datagrams in
the same order meet the same fates on every run.

>>> from netlab.services.lossy import LossyLink
>>> link = LossyLink(loss=0.0, duplicate=1.0, reorder=0.0, seed="doc")
>>> link.decide("a")
(['a', 'a'], False)
"""
from __future__ import annotations

import random
from typing import Generic, List, Optional, Tuple, TypeVar

__all__ = ["REORDER_HOLD", "LossyLink"]

# Seconds a held-back datagram waits for a later one to overtake it; after
# that the sender should let it go anyway (``release``), not reordered.
REORDER_HOLD = 0.05

Item = TypeVar("Item")


class LossyLink(Generic[Item]):
    """Fate of each datagram in one direction: lost, duplicated, held back.

    An item is whatever the caller passes (the relay passes the bytes and
    the way they leave); the link only returns items, in the order to send.
    ``stats`` counts ``received``, ``dropped``, ``duplicated`` and
    ``reordered``; ``sent`` and ``send_errors`` are the sender's to count.
    """

    def __init__(self, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 seed: Optional[str] = None):
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.rng = random.Random(seed)
        self.active = bool(loss or duplicate or reorder)
        self.held: Optional[Item] = None
        self.held_copies = 1
        self.held_token = 0
        self.stats = {"received": 0, "sent": 0, "dropped": 0, "duplicated": 0, "reordered": 0,
                      "send_errors": 0}

    def decide(self, item: Item) -> Tuple[List[Item], bool]:
        """What to send now for ``item``, and whether ``item`` is now held back.

        A held item goes out right behind the next one that passes (counted
        ``reordered``), or by :meth:`release` when none comes in time.
        ``held_token`` changes with every hold, so a sender's timer can tell
        whether the item it waits for is still the one held.
        """
        self.stats["received"] += 1
        if not self.active:
            return [item], False
        r_loss, r_dup, r_reorder = self.rng.random(), self.rng.random(), self.rng.random()
        if r_loss < self.loss:
            self.stats["dropped"] += 1
            return [], False
        copies = [item, item] if r_dup < self.duplicate else [item]
        if len(copies) == 2:
            self.stats["duplicated"] += 1
        if r_reorder < self.reorder and self.held is None:
            # Hold it back (with its duplicate, if any): the next datagram
            # that passes goes out first.
            self.held, self.held_copies = item, len(copies)
            self.held_token += 1
            return [], True
        out = copies
        if self.held is not None:
            out = copies + [self.held] * self.held_copies
            self.held = None
            self.stats["reordered"] += 1
        return out, False

    def release(self) -> List[Item]:
        """The held item, if nothing overtook it in time (not counted reordered)."""
        if self.held is None:
            return []
        out = [self.held] * self.held_copies
        self.held = None
        return out
