"""X12 interchanges: tokenizing, envelope checks (ISA/GS/ST and their trailers) and writing.

Separator discovery is delegated to ``ansi-x12`` (import name ``x12``): it derives the separators
from the fixed-width ISA header and validates that header. Its envelope parser is not used,
because its errors do not name the segment number; the checks here do
(segment numbers count from 1 at ISA, the way an editor or a trading partner's 997 would point
to them). The 867 loop structure lives in :mod:`gridflex.meterdata.edi867`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gridflex.errors import InputError

# ISA elements have fixed widths (ASC X12 control segment ISA, release 00401).
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)


def now_minute() -> datetime:
    """Current UTC time to the minute, naive (ISA/GS/BPT carry no zone)."""
    return datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)


@dataclass(frozen=True)
class Segment:
    """One segment: its 1-based number in the interchange, its tag and its elements (text)."""

    number: int
    tag: str
    elements: tuple[str, ...]

    def el(self, position: int) -> str:
        """Element at a 1-based X12 position (``el(1)`` is ``REF01``); ``""`` when absent."""
        return self.elements[position - 1] if position <= len(self.elements) else ""

    def where(self) -> str:
        """How an error message names this segment."""
        return f"segment {self.number} ({self.tag}{'*' + self.el(1) if self.el(1) else ''})"


@dataclass(frozen=True)
class Transaction:
    """One ST..SE transaction set with the header data of its functional group."""

    code: str
    control_number: str
    segments: tuple[Segment, ...]
    group_control_number: str
    interchange_control_number: str
    version: str


@dataclass(frozen=True)
class Envelope:
    """Sender/receiver identities and control numbers for writing an interchange."""

    sender_id: str = "GRIDFLEX"
    receiver_id: str = "RECEIVER"
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    interchange_control_number: int = 1
    group_control_number: int = 1
    functional_id: str = "PT"
    version: str = "004010"
    created: datetime = field(default_factory=now_minute)
    usage: str = "P"


def tokenize(payload: bytes, source: str = "X12 input") -> list[Segment]:
    """Split an interchange into numbered segments.

    Separator discovery and the fixed-width ISA check come from ``ansi-x12``
    (``derive_x12_separators``). Its ``tokenize_x12`` is equally sound but builds and validates a
    frozen dataclass per segment (about 10 us each, a third of reading a meter-year); the split
    itself is simple enough to do here with ``str.split``, keeping its rules: whitespace between
    segments is formatting, an empty segment or a non-alphanumeric tag is an error.

    Raises
    ------
    InputError
        No valid ISA header, non-ASCII bytes, an unterminated last segment, an empty segment or a
        bad segment tag; names ``source`` and the segment number.
    """
    from x12 import X12Error, derive_x12_separators

    try:
        separators = derive_x12_separators(payload)
    except X12Error as exc:
        raise InputError(
            f"{source}: not a readable X12 interchange ({exc})",
            "the file must start with a 106-character ISA segment that declares the separators",
        ) from exc
    terminator = separators.segment.decode("latin-1")
    element = separators.element.decode("latin-1")
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as exc:
        number = payload[: exc.start].count(separators.segment) + 1
        raise InputError(
            f"{source}: segment {number} holds non-ASCII bytes",
            "X12 867 data is plain ASCII; re-export the file from the sending system",
        ) from exc
    formatting = "".join(c for c in " \t\r\n" if c != terminator)
    parts = text.split(terminator)
    if parts[-1].strip(formatting):
        raise InputError(
            f"{source}: the last segment ({parts[-1].strip()[:20]!r}...) has no terminator "
            f"{terminator!r}",
            "end every segment, the last one too, with the terminator ISA declares",
        )
    segments: list[Segment] = []
    for number, raw in enumerate(parts[:-1], start=1):
        raw = raw.lstrip(formatting)
        fields = raw.split(element)
        tag = fields[0]
        if not tag or not tag.isalnum():
            raise InputError(
                f"{source}: segment {number} has {'no tag' if not tag else f'a bad tag {tag!r}'}",
                "remove empty segments (a doubled terminator) and check the separators",
            )
        segments.append(Segment(number, tag, tuple(map(str.strip, fields[1:]))))
    return segments


def transactions(segments: Sequence[Segment], source: str = "X12 input") -> list[Transaction]:
    """Check the envelopes (counts and control numbers) and return the transaction sets.

    Checks SE01 (segments from ST to SE inclusive), GE01 (transaction sets in the group), IEA01
    (groups in the interchange) and that every trailer's control number repeats its header's.
    """
    out: list[Transaction] = []
    i = 0
    n = len(segments)

    def fail(seg: Segment, what: str, fix: str) -> InputError:
        return InputError(f"{source}: {seg.where()}: {what}", fix)

    while i < n:
        isa = segments[i]
        if isa.tag != "ISA":
            raise fail(isa, "expected ISA (interchange header)", "start each interchange with ISA")
        isa_control = isa.el(13)
        groups = 0
        i += 1
        while i < n and segments[i].tag == "GS":
            gs = segments[i]
            groups += 1
            gs_control = gs.el(6)
            version = gs.el(8)
            sets = 0
            i += 1
            while i < n and segments[i].tag == "ST":
                st = segments[i]
                start = i
                i += 1
                while i < n and segments[i].tag not in ("SE", "ST", "GE", "IEA"):
                    i += 1
                if i >= n or segments[i].tag != "SE":
                    at = segments[i] if i < n else segments[-1]
                    raise fail(
                        at,
                        f"transaction {st.el(2)!r} opened at segment {st.number} has no SE trailer",
                        "close every ST with an SE segment",
                    )
                se = segments[i]
                count = i - start + 1
                if se.el(1) != str(count):
                    raise fail(
                        se,
                        f"SE01 says {se.el(1) or '(empty)'} segments but transaction "
                        f"{st.el(2)!r} (segments {st.number}-{se.number}) has {count}",
                        f"set SE01 to {count} (ST through SE inclusive)",
                    )
                if se.el(2) != st.el(2):
                    raise fail(
                        se,
                        f"SE02 control number {se.el(2)!r} does not match ST02 {st.el(2)!r} "
                        f"at segment {st.number}",
                        "repeat the ST02 control number in SE02",
                    )
                out.append(
                    Transaction(
                        code=st.el(1),
                        control_number=st.el(2),
                        segments=tuple(segments[start : i + 1]),
                        group_control_number=gs_control,
                        interchange_control_number=isa_control,
                        version=version,
                    )
                )
                sets += 1
                i += 1
            if i >= n or segments[i].tag != "GE":
                at = segments[i] if i < n else segments[-1]
                raise fail(
                    at,
                    f"group opened at segment {gs.number} has no GE trailer",
                    "close every GS with a GE segment",
                )
            ge = segments[i]
            if ge.el(1) != str(sets):
                raise fail(
                    ge,
                    f"GE01 says {ge.el(1) or '(empty)'} transaction sets but the group opened at "
                    f"segment {gs.number} has {sets}",
                    f"set GE01 to {sets}",
                )
            if ge.el(2) != gs_control:
                raise fail(
                    ge,
                    f"GE02 control number {ge.el(2)!r} does not match GS06 {gs_control!r}",
                    "repeat the GS06 control number in GE02",
                )
            i += 1
        if i >= n or segments[i].tag != "IEA":
            at = segments[i] if i < n else segments[-1]
            raise fail(
                at,
                f"interchange opened at segment {isa.number} has no IEA trailer "
                "where one was expected",
                "close the interchange with IEA",
            )
        iea = segments[i]
        if iea.el(1) != str(groups):
            raise fail(
                iea,
                f"IEA01 says {iea.el(1) or '(empty)'} functional groups but the interchange "
                f"has {groups}",
                f"set IEA01 to {groups}",
            )
        if iea.el(2) != isa_control:
            raise fail(
                iea,
                f"IEA02 control number {iea.el(2)!r} does not match ISA13 {isa_control!r}",
                "repeat the ISA13 control number in IEA02",
            )
        i += 1
    return out


def write_interchange(
    sets: Sequence[Sequence[Sequence[str]]], envelope: Envelope, terminator: str = "~\n"
) -> bytes:
    """Wrap transaction bodies (lists of segments, each a list ``[tag, el1, ...]``) in envelopes.

    Each body is the segments between ST and SE; this adds ST/SE (with counts and control
    numbers), one GS/GE group and the ISA/IEA interchange. Separators: ``*`` elements, ``>``
    components, ``~`` segments (followed by a newline for readability, which X12 allows as
    formatting between segments).
    """
    stamp = envelope.created
    isa_values = (
        "00",
        "",
        "00",
        "",
        envelope.sender_qualifier,
        envelope.sender_id,
        envelope.receiver_qualifier,
        envelope.receiver_id,
        stamp.strftime("%y%m%d"),
        stamp.strftime("%H%M"),
        "U",
        "00401",
        f"{envelope.interchange_control_number:09d}",
        "0",
        envelope.usage,
        ">",
    )
    for value, width in zip(isa_values, _ISA_WIDTHS, strict=True):
        if len(value) > width:
            raise InputError(
                f"ISA value {value!r} is longer than its fixed width {width}",
                "shorten the sender/receiver identifier to 15 characters",
            )
    lines = ["*".join(["ISA", *(v.ljust(w) for v, w in zip(isa_values, _ISA_WIDTHS, strict=True))])]
    gs_control = str(envelope.group_control_number)
    lines.append(
        "*".join(
            [
                "GS",
                envelope.functional_id,
                envelope.sender_id,
                envelope.receiver_id,
                stamp.strftime("%Y%m%d"),
                stamp.strftime("%H%M"),
                gs_control,
                "X",
                envelope.version,
            ]
        )
    )
    for k, body in enumerate(sets, start=1):
        control = f"{k:04d}"
        lines.append(f"ST*867*{control}")
        for seg in body:
            if any(("*" in e or "~" in e or ">" in e) for e in seg):
                raise InputError(
                    f"value in segment {seg[0]} contains a separator character (*, ~ or >): "
                    f"{'*'.join(seg)!r}",
                    "remove '*', '~' and '>' from identifiers and names",
                )
            lines.append("*".join(seg).rstrip("*"))
        lines.append(f"SE*{len(body) + 2}*{control}")
    lines.append(f"GE*{len(sets)}*{gs_control}")
    lines.append(f"IEA*1*{envelope.interchange_control_number:09d}")
    return (terminator.join(lines) + terminator).encode("ascii")
