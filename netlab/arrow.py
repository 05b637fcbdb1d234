"""Captures as data: Arrow tables and Parquet datasets from a capture file.

``netlab dissect --json`` prints one JSON object per packet; this module gives
the same packets as columns, the shape analysis tools want (DuckDB, Polars,
Spark, Dask, pandas all read Arrow and Parquet)::

    from netlab.packet import to_arrow
    table = to_arrow("capture.pcap", columns=["ts", "src", "dport", "flags"])

How it is built: the packet core walks the capture and fills one flat buffer
per record field (:func:`netlab.packet.pure.arrow.iter_columns`, compiled twin
``src_c/_arrow.pyx``), a batch of frames at a time, with no Python object
per packet. Here those buffers become Arrow arrays as they are (zero-copy),
and a few vectorised Arrow compute steps turn them into the columns below,
with the rules of :func:`netlab.dissect.packet_json` (a port only where the
transport header was decoded, flag names, status words...). The JSON key of
the same name always holds the same value.

Columns (:data:`COLUMNS`, in this order; ``payload`` only when asked for):

=============  ======================  =============================================
column         type                    meaning (``--json`` key of the same name)
=============  ======================  =============================================
n              int64                   packet number, from 1 (after the filter)
ts             timestamp[ns, UTC]      capture time (JSON: float seconds)
ts_ns          int64                   capture time, nanoseconds since 1970
src, dst       string                  addresses as text, null when not IP
proto          dictionary<string>      tcp, udp, icmp, icmp6, arp, ip-47, ether-0x88cc...
sport, dport   uint16                  ports, null when not TCP/UDP with a header
flags          list<string>            TCP flag names (``["SYN", "ACK"]``), else []
tcp_flags      uint16                  the same flags as bits (SYN 0x02...), or null
length         uint32                  bytes captured
wirelen        uint32                  bytes on the wire
payload_len    uint32                  transport payload bytes
seq, ack       uint32                  TCP sequence and acknowledgment numbers, or null
icmp_type      uint8                   ICMP/ICMPv6 type, or null
icmp_code      uint8                   ICMP/ICMPv6 code, or null
checksum       dictionary<string>      ok / bad with ``checks=True``, else null
status         list<string>            truncated, fragment, malformed, bad-checksum...
interface      uint32                  pcapng interface number (0 in pcap files)
offset         int64                   where the frame starts in the file
payload        large_binary            the payload bytes (JSON: hex), on request only
=============  ======================  =============================================

Addresses are **strings**, not 4- or 16-byte binary: they read and compare
as people write them (``WHERE dst = '127.0.0.1'``) in every tool without a
conversion function, they are the JSON values byte for byte, and one column
holds IPv4 and IPv6 alike. The cost is small where it matters: a capture
repeats a few addresses, so Parquet's dictionary encoding stores each once.

``proto`` and ``checksum`` are dictionary-encoded (a category: each word is
stored once, each row holds a small index); every reader shows them as text.

``ts`` is the time to compute with; ``ts_ns`` keeps the exact integer. In
Parquet files ``ts`` is stored in microseconds (what Spark reads; DuckDB and
Polars too) while ``ts_ns`` keeps the nanoseconds. Times after the year 2262
(only a damaged or crafted file has them) do not fit in int64 and wrap.

pyarrow is an optional extra: ``pip install 'netlab[data]'``. Without it,
every function here raises :class:`PyarrowMissing` naming that command.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import mmap
import multiprocessing
import os
from typing import Callable, Iterator, List, Optional, Sequence

from netlab import packet
from netlab.errors import NetlabError
from netlab.packet.columns import COLUMNS as RAW_COLUMNS
from netlab.packet.fields import (IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
                                  RECORD_FIELDS, S_FRAG, S_IPCSUM_BAD, S_L4, S_L4CSUM_BAD,
                                  S_L4CSUM_OK, S_MALFORMED, S_TRUNC)
from netlab.packet.pcap import open_capture

__all__ = ["COLUMNS", "DEFAULT_BATCH", "DEFAULT_COLUMNS", "PyarrowMissing", "iter_arrow_batches",
           "parquet_targets", "schema", "to_arrow", "to_parquet", "write_parquet"]

COLUMNS = ("n", "ts", "ts_ns", "src", "dst", "proto", "sport", "dport", "flags", "tcp_flags",
           "length", "wirelen", "payload_len", "seq", "ack", "icmp_type", "icmp_code",
           "checksum", "status", "interface", "offset", "payload")
DEFAULT_COLUMNS = COLUMNS[:-1]  # the payload bytes only on request: they are most of a file
DEFAULT_BATCH = 65536           # frames per batch: a few MB of buffers
INSTALL_HINT = "pip install 'netlab[data]'"


class PyarrowMissing(NetlabError, ImportError):
    """pyarrow is not installed; the message names the extra that brings it."""


def _pyarrow():
    """``(pyarrow, pyarrow.compute)``, imported on first use."""
    try:
        import pyarrow
        import pyarrow.compute
    except ImportError:
        raise PyarrowMissing("pyarrow is not installed: Arrow and Parquet output need it "
                             f"({INSTALL_HINT})") from None
    return pyarrow, pyarrow.compute


def schema(columns: Optional[Sequence[str]] = None):
    """The Arrow schema of :func:`to_arrow` for these columns (default :data:`DEFAULT_COLUMNS`)."""
    pa, _pc = _pyarrow()
    types = {
        "n": pa.int64(), "ts": pa.timestamp("ns", tz="UTC"), "ts_ns": pa.int64(),
        "src": pa.string(), "dst": pa.string(), "proto": pa.dictionary(pa.int16(), pa.string()),
        "sport": pa.uint16(), "dport": pa.uint16(), "flags": pa.list_(pa.string()),
        "tcp_flags": pa.uint16(), "length": pa.uint32(), "wirelen": pa.uint32(),
        "payload_len": pa.uint32(), "seq": pa.uint32(), "ack": pa.uint32(),
        "icmp_type": pa.uint8(), "icmp_code": pa.uint8(),
        "checksum": pa.dictionary(pa.int8(), pa.string()),
        "status": pa.list_(pa.string()), "interface": pa.uint32(), "offset": pa.int64(),
        "payload": pa.large_binary(),
    }
    return pa.schema([(name, types[name]) for name in _chosen(columns)])


def _chosen(columns) -> tuple:
    if columns is None:
        return DEFAULT_COLUMNS
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}: choose from {', '.join(COLUMNS)}")
    return tuple(columns)


def _twin(backend: Optional[str]):
    """The columns module of a packet backend (default: the live one)."""
    name = backend or packet.BACKEND
    if name == "python":
        from netlab.packet.pure import arrow
        return arrow
    if name == "cython":
        try:
            from netlab.packet import _arrow
        except ImportError as exc:
            raise ImportError(f"compiled netlab.packet._arrow not built ({exc}); rebuild with: "
                              "python setup.py build_ext --inplace") from None
        return _arrow
    raise ValueError(f"unknown backend {name!r}: choose 'cython' or 'python'")


def _predicate(filter) -> Optional[Callable[[tuple], bool]]:
    if filter is None or callable(filter):
        return filter
    from netlab.packet.pfilter import compile_filter
    return compile_filter(filter)


class _Shaper:
    """Turns batches of raw column buffers into Arrow record batches (see the module doc)."""

    # Status bits that give words in the ``status`` column (netlab.packet.lines._status_words).
    _WORD_BITS = S_TRUNC | S_FRAG | S_MALFORMED | S_IPCSUM_BAD | S_L4CSUM_BAD

    def __init__(self, columns) -> None:
        # The rules of dissect --json, where they live (netlab.dissect re-exports them).
        from netlab.packet import lines as rules
        pa, pc = self.pa, self.pc = _pyarrow()
        self.columns = _chosen(columns)
        self.schema = schema(self.columns)
        codes = {"Q": pa.uint64(), "I": pa.uint32(), "i": pa.int32(), "H": pa.uint16(),
                 "h": pa.int16(), "B": pa.uint8()}
        self.raw_types = {name: codes[code] for name, code in RAW_COLUMNS}
        self.types = dict(zip(self.schema.names, self.schema.types))
        # Every value the list columns can hold, looked up by the bits: a
        # capture's millions of rows then cost one vectorised `take`.
        self.flag_lists = pa.array([rules.flag_names(bits) for bits in range(512)],
                                   pa.list_(pa.string()))
        self.status_lists = pa.array([rules._status_words(bits)
                                      for bits in range(self._WORD_BITS + 1)],
                                     pa.list_(pa.string()))
        self.proto_label = rules.proto_label
        # Index p + 1 names IP protocol p; index 0 (no transport protocol) is never used.
        self.proto_words = pa.array(["-"] + [packet.proto_name(p) for p in range(256)])
        self.checksum_words = pa.array(["-", "bad", "ok"])  # by (status >> 9) & 3
        self._ones = None
        self.rows = 0  # rows emitted so far: the next batch's `n` starts after them

    def raw(self, n: int, cols: dict) -> dict:
        """The buffers of one batch as Arrow arrays, zero-copy."""
        pa = self.pa
        out = {name: pa.Array.from_buffers(self.raw_types[name], n,
                                           [None, pa.py_buffer(cols[name])])
               for name, _code in RAW_COLUMNS}
        is_ip = self.pc.not_equal(out["family"], 0).buffers()[1]  # the addresses' validity bitmap
        for name in ("src", "dst"):
            offsets, text = cols[name]
            out[name] = pa.Array.from_buffers(pa.string(), n, [is_ip, pa.py_buffer(offsets),
                                                                pa.py_buffer(text)])
        if "payload" in cols:
            offsets, data = cols["payload"]
            out["payload"] = pa.Array.from_buffers(pa.large_binary(), n, [
                None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return out

    def shape(self, raw: dict):
        """One record batch of the chosen columns from (filtered) raw arrays.

        Every step is one vectorised pass over the batch, and most are not
        even that: a column that is a raw field with some rows null reuses
        the raw values buffer under a validity bitmap (zero-copy).
        """
        pa, pc = self.pa, self.pc
        n, first = len(raw["proto"]), self.rows
        self.rows += n
        proto, status = raw["proto"], raw["status"]
        is_ = {p: pc.equal(proto, p)
               for p in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6)}
        l4 = pc.not_equal(pc.bit_wise_and(status, S_L4), 0)
        tcp = pc.and_(is_[IPPROTO_TCP], l4)
        ports = pc.and_(pc.or_(is_[IPPROTO_TCP], is_[IPPROTO_UDP]), l4)
        icmp = pc.and_(pc.or_(is_[IPPROTO_ICMP], is_[IPPROTO_ICMPV6]), l4)
        # A transport protocol whose header is cut or broken has no payload to speak of.
        no_payload = pc.and_not(pc.or_(pc.or_(is_[IPPROTO_TCP], is_[IPPROTO_UDP]),
                                       pc.or_(is_[IPPROTO_ICMP], is_[IPPROTO_ICMPV6])), l4)

        def only(mask, values, name):
            """``values`` where ``mask`` holds, null elsewhere (the mask is the validity bitmap)."""
            values = values.cast(self.types[name], safe=False)  # the nulls hide what does not fit
            return pa.Array.from_buffers(self.types[name], n, [mask.buffers()[1],
                                                               values.buffers()[1]])

        make = {
            "n": lambda: pc.add(self._iota(n), first),
            "ts": lambda: raw["ts_ns"].view(pa.int64()).view(self.types.get("ts")),
            "ts_ns": lambda: raw["ts_ns"].view(pa.int64()),
            "src": lambda: raw["src"],
            "dst": lambda: raw["dst"],
            "proto": lambda: self._labels(raw),
            "sport": lambda: only(ports, raw["sport"], "sport"),
            "dport": lambda: only(ports, raw["dport"], "dport"),
            "flags": lambda: self._lists(self.flag_lists, pc.if_else(tcp, raw["flags"], 0)),
            "tcp_flags": lambda: only(tcp, raw["flags"], "tcp_flags"),
            "length": lambda: raw["caplen"],
            "wirelen": lambda: raw["wirelen"],
            "payload_len": lambda: pc.if_else(no_payload, pa.scalar(0, pa.uint32()),
                                              raw["payload_len"]),
            "seq": lambda: only(tcp, raw["seq"], "seq"),
            "ack": lambda: only(tcp, raw["ack"], "ack"),
            "icmp_type": lambda: only(icmp, raw["sport"], "icmp_type"),
            "icmp_code": lambda: only(icmp, raw["dport"], "icmp_code"),
            "checksum": lambda: self._checksum(status),
            "status": lambda: self._lists(self.status_lists,
                                          pc.bit_wise_and(status, self._WORD_BITS)),
            "interface": lambda: raw["ifid"],
            "offset": lambda: raw["offset"].view(pa.int64()),
            "payload": lambda: pc.if_else(no_payload, pa.scalar(b"", pa.large_binary()),
                                          raw["payload"]),
        }
        return pa.RecordBatch.from_arrays([make[name]() for name in self.columns],
                                          schema=self.schema)

    def _iota(self, n: int):
        """``1, 2, ..., n`` (int64), made once for the largest batch seen."""
        if self._ones is None or len(self._ones) < n:
            pa = self.pa
            self._ones = self.pc.cumulative_sum(pa.nulls(n, pa.int64()).fill_null(1))
        return self._ones.slice(0, n)

    def _lists(self, table, index):
        """``table[index]`` for every row: the list of words of each row's bits."""
        pa, pc = self.pa, self.pc
        if not pc.any(pc.not_equal(index, 0)).as_py():  # every row [] (a common batch): no take
            zeros = pc.multiply(self._iota(len(index) + 1), 0).cast(pa.int32())
            return pa.ListArray.from_arrays(zeros, pa.array([], pa.string()))
        return pc.take(table, index)

    def _checksum(self, status):
        """``ok`` / ``bad`` / null from the two checksum bits, as a dictionary column."""
        pa, pc = self.pa, self.pc
        code = pc.shift_right(pc.bit_wise_and(status, S_L4CSUM_OK | S_L4CSUM_BAD), 9)
        checked = pc.not_equal(code, 0).buffers()[1]  # the validity bitmap: null when unchecked
        index = pa.Array.from_buffers(pa.int8(), len(code), [
            checked, code.cast(pa.int8()).buffers()[1]])
        return pa.DictionaryArray.from_arrays(index, self.checksum_words, safe=False)

    def _labels(self, raw):
        """The ``proto`` words as a dictionary column: IP protocol numbers index a table.

        A packet with a transport protocol is labelled by its number alone
        (index ``proto + 1`` into the names of 0..255); the few without one
        (ARP, unknown ethertypes and link types) get their words appended
        to that batch's dictionary, made once per distinct kind.
        """
        pa, pc = self.pa, self.pc
        index = pc.add(raw["proto"], 1)
        missing = pc.equal(index, 0)
        if not pc.any(missing).as_py():
            return pa.DictionaryArray.from_arrays(index, self.proto_words, safe=False)
        rare = {name: pc.filter(raw[name], missing) for name in ("ethertype", "family", "linktype")}
        # One integer says everything such a label depends on (dissect.proto_label):
        # ethertype (17 bits, -1 -> 0), IP or not, link type.
        key = pc.add(rare["ethertype"].cast(pa.int64()), 1)
        key = pc.add(key, pc.multiply(pc.not_equal(rare["family"], 0).cast(pa.int64()), 1 << 17))
        key = pc.add(key, pc.multiply(rare["linktype"].cast(pa.int64()), 1 << 18))
        kinds = pc.unique(key)
        rec = [0] * len(RECORD_FIELDS)
        at = {name: i for i, name in enumerate(RECORD_FIELDS)}
        words = []
        for k in kinds.to_pylist():
            rec[at["proto"]] = -1
            rec[at["ethertype"]] = (k & 0x1FFFF) - 1
            rec[at["src"]] = "ip" if k >> 17 & 1 else None
            rec[at["linktype"]] = k >> 18
            words.append(self.proto_label(rec))
        extra = pc.add(pc.index_in(key, value_set=kinds).cast(pa.int16()), len(self.proto_words))
        index = pc.replace_with_mask(index, missing, extra)
        dictionary = pa.concat_arrays([self.proto_words, pa.array(words, pa.string())])
        return pa.DictionaryArray.from_arrays(index, dictionary, safe=False)


def _batches(buf, batch_size, columns, filter, checks, backend) -> Iterator:
    if isinstance(buf, memoryview):
        buf = buf.cast("B")
    shaper = _Shaper(columns)
    predicate = _predicate(filter)
    twin = _twin(backend)
    # A filter is the dissect filter language, a predicate over record
    # tuples: a second walk (the records path of the same backend) gives one
    # keep/drop per frame, in step with the column batches.
    records = None if predicate is None else _records(backend)(buf, checks)
    dropped = 0  # bytes of the mapping before which every page is done with
    for n, cols in twin.iter_columns(buf, batch_size, checks, "payload" in shaper.columns):
        raw = shaper.raw(n, cols)
        end = raw["offset"][n - 1].as_py() + raw["caplen"][n - 1].as_py()
        if records is not None:
            keep = shaper.pa.array([predicate(r) for r in itertools.islice(records, n)],
                                   shaper.pa.bool_())
            raw = {name: shaper.pc.filter(col, keep) for name, col in raw.items()}
        batch = shaper.shape(raw)
        del raw, cols
        dropped = _release(buf, dropped, end)
        yield batch


def _records(backend):
    return packet.load_backend(backend or packet.BACKEND).iter_records


def _release(buf, done: int, end: int) -> int:
    """Hand the pages of a mapped file the walk has passed back to the kernel.

    They stay in the page cache; this process just stops counting them, so a
    10 GB capture costs the memory of one batch, not of the file.
    """
    if not isinstance(buf, mmap.mmap):
        return done
    upto = end - end % mmap.PAGESIZE
    if upto > done:
        buf.madvise(mmap.MADV_DONTNEED, done, upto - done)
        return upto
    return done


@contextlib.contextmanager
def _source(source):
    """A capture buffer from a path (mapped, see :func:`netlab.packet.pcap.open_capture`) or a buffer."""
    if isinstance(source, (str, os.PathLike)):
        with open_capture(source) as buf:
            yield buf
    else:
        yield source


def iter_arrow_batches(source, batch_size: int = DEFAULT_BATCH,
                       columns: Optional[Sequence[str]] = None, filter=None,
                       checks: bool = False, backend: Optional[str] = None) -> Iterator:
    """Iterate ``pyarrow.RecordBatch`` es of a capture, at most ``batch_size`` packets each.

    ``source`` is a file name or a buffer (bytes, mmap...). ``columns``
    chooses and orders columns (default :data:`DEFAULT_COLUMNS`); ``filter``
    is a ``dissect --filter`` expression (``"tcp port 80"``) or a predicate
    over record tuples; ``checks`` verifies checksums (the ``checksum``
    column); ``backend`` is ``"cython"`` or ``"python"`` (default: the live
    one). Memory stays that of one batch however large the file. A damaged
    record raises :class:`netlab.packet.CaptureError` after the batches of
    every good packet before it.
    """
    with _source(source) as buf:
        yield from _batches(buf, batch_size, columns, filter, checks, backend)


def to_arrow(source, columns: Optional[Sequence[str]] = None, filter=None, checks: bool = False,
             backend: Optional[str] = None, batch_size: int = DEFAULT_BATCH):
    """The packets of a capture as one ``pyarrow.Table`` (arguments: :func:`iter_arrow_batches`).

    A damaged record raises :class:`netlab.packet.CaptureError`; its
    ``table`` attribute holds the packets before the damage.
    """
    pa, _pc = _pyarrow()
    batches: List = []
    try:
        for batch in iter_arrow_batches(source, batch_size, columns, filter, checks, backend):
            batches.append(batch)
    except packet.CaptureError as exc:
        exc.table = pa.Table.from_batches(batches, schema(columns))
        raise
    return pa.Table.from_batches(batches, schema(columns))


# --- Parquet: one file per capture, a folder of them is a dataset ----------

PARQUET_OPTIONS = {
    "compression": "zstd",
    # Microseconds: the timestamp unit every reader takes (Spark refuses
    # nanoseconds); the exact nanoseconds stay in ts_ns.
    "coerce_timestamps": "us",
    "allow_truncated_timestamps": True,
}
# Columns that count up or change a little from packet to packet are stored as
# differences (delta encoding): a few bits a packet instead of eight bytes.
# Dictionary encoding would only waste time on them; the other columns repeat
# a few values (addresses, ports, flags, lengths) and keep their dictionaries.
DELTA_COLUMNS = ("n", "ts", "ts_ns", "seq", "ack", "offset")


def _parquet_options(names) -> dict:
    delta = [c for c in DELTA_COLUMNS if c in names]
    return dict(PARQUET_OPTIONS, use_dictionary=[c for c in names if c not in delta],
                column_encoding={c: "DELTA_BINARY_PACKED" for c in delta})


def to_parquet(source, target, columns: Optional[Sequence[str]] = None, filter=None,
               checks: bool = False, backend: Optional[str] = None,
               batch_size: int = DEFAULT_BATCH,
               on_batch: Optional[Callable[[int], None]] = None) -> int:
    """Write the packets of one capture to the Parquet file ``target``; returns the packet count.

    The file appears only when complete (written beside it, then renamed).
    A damaged record still leaves ``target`` with every packet before it,
    then raises :class:`netlab.packet.CaptureError` with ``rows`` set; a file
    that is not a capture at all raises before anything is written.
    ``on_batch(rows)`` is called after each batch (progress).
    """
    _pyarrow()
    import pyarrow.parquet as pq

    part = f"{target}.part-{os.getpid()}"
    rows = 0
    try:
        layout = schema(columns)
        with pq.ParquetWriter(part, layout, **_parquet_options(layout.names)) as writer:
            try:
                for batch in iter_arrow_batches(source, batch_size, columns, filter, checks,
                                                backend):
                    writer.write_batch(batch)
                    rows += batch.num_rows
                    if on_batch is not None:
                        on_batch(batch.num_rows)
            except packet.CaptureError as exc:
                if exc.offset == 0:  # not a capture: no Parquet file at all
                    raise
                exc.rows = rows
                damage = exc
            else:
                damage = None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    os.replace(part, target)
    if damage is not None:
        raise damage
    return rows


def parquet_targets(sources: Sequence[str], out: str) -> list:
    """``[(capture, parquet file), ...]``: where :func:`write_parquet` puts each capture.

    ``out`` ending in ``.parquet`` is one file (for one capture); anything
    else is a dataset folder holding ``NAME.parquet`` per capture ``NAME.pcap``
    (``NAME-2.parquet``... when two captures share a name).
    """
    if out.endswith(".parquet"):
        if len(sources) != 1:
            raise ValueError(f"{len(sources)} captures make a dataset: give a folder name, "
                             f"not the file {out} (one NAME.parquet per capture goes inside)")
        return [(sources[0], out)]
    taken: set = set()
    pairs = []
    for src in sources:
        stem = os.path.basename(os.path.normpath(src)).split(".")[0] or "capture"
        name, i = stem, 2
        while name in taken:
            name, i = f"{stem}-{i}", i + 1
        taken.add(name)
        pairs.append((src, os.path.join(out, name + ".parquet")))
    return pairs


def _convert(job: tuple, on_batch: Optional[Callable[[int], None]] = None) -> dict:
    """One capture to one Parquet file, as a result dict (runs in a worker process too)."""
    source, target, columns, filter, checks = job
    result = {"capture": source, "parquet": target, "packets": 0, "error": None}
    try:
        result["packets"] = to_parquet(source, target, columns, filter, checks,
                                       on_batch=on_batch)
    except packet.CaptureError as exc:
        result["packets"] = getattr(exc, "rows", 0)
        result["error"] = {"offset": exc.offset, "message": str(exc)}
        if exc.offset == 0:
            result["parquet"] = None
    return result


def write_parquet(sources: Sequence[str], out: str, jobs: int = 1,
                  columns: Optional[Sequence[str]] = None, filter: Optional[str] = None,
                  checks: bool = False,
                  progress: Optional[Callable[[int, int, int], None]] = None) -> list:
    """Captures to Parquet (see :func:`parquet_targets`), ``jobs`` captures at a time.

    Returns one dict per capture, in the order given: ``capture``,
    ``parquet`` (None when it was not a capture), ``packets`` and ``error``
    (None, or ``{"offset", "message"}`` for a damaged file: its packets
    before the damage are written). ``progress(files_done, files, packets)``
    is called as the work goes on. The folder, read as one dataset::

        duckdb -c "SELECT proto, count(*) FROM 'OUT/*.parquet' GROUP BY proto"
    """
    _pyarrow()
    pairs = parquet_targets(sources, out)
    if not out.endswith(".parquet"):
        os.makedirs(out, exist_ok=True)
    jobs_in = [(src, dst, columns, filter, checks) for src, dst in pairs]
    results: list = [None] * len(jobs_in)
    packets = 0
    report = progress or (lambda done, total, n: None)
    if jobs <= 1 or len(jobs_in) == 1:
        for i, job in enumerate(jobs_in):
            def counted(rows, i=i):
                nonlocal packets
                packets += rows
                report(i, len(jobs_in), packets)
            results[i] = _convert(job, counted)
            report(i + 1, len(jobs_in), packets)
        return results
    # Separate processes: the walk of each capture is one core's work. Spawned,
    # not forked: pyarrow's thread pools do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_convert, job): i for i, job in enumerate(jobs_in)}
        done = 0
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = result = future.result()
            done += 1
            packets += result["packets"]
            report(done, len(jobs_in), packets)
    return results
