"""Request planner: coalesce a device's points into as few Modbus reads as the device allows.

Every request on a shared RS-485 bus costs a turnaround of several milliseconds, so reading 40
points one by one is 40× slower than one block read. Peer gateways get this wrong in both
directions (16-register chunks instead of 125; one request per resource). The rules here:

* one table per request (FC01/02/03/04 are separate functions);
* at most ``max_registers_per_read`` registers (≤125, FC03/04) or ``max_bits_per_read`` bits
  (≤2000, FC01/02) per request — the profile may be stricter (Eastron: 60 registers);
* never read across a declared hole (a range the device answers with exception 02);
* gaps between points are read through (cheaper than a second request) only up to ``max_gap``.

Pure functions: unit-tested without a device.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from device_profiles import Hole, Point

_REGISTER_LIMIT = 125
_BIT_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``; ``points`` with their
    offset in the block."""

    table: str
    start: int
    count: int
    points: tuple[tuple[Point, int], ...]

    @property
    def end(self) -> int:
        return self.start + self.count  # exclusive


def _crosses_hole(holes: Sequence[Hole], table: str, start: int, count: int) -> bool:
    return any(h.overlaps(table, start, count) for h in holes)


def plan(
    points: Iterable[Point],
    *,
    max_registers: int = _REGISTER_LIMIT,
    max_bits: int = _BIT_LIMIT,
    holes: Sequence[Hole] = (),
    max_gap: int | None = None,
) -> list[Block]:
    """Group ``points`` into blocks (sorted by table then address). Points without a table are skipped.

    ``max_gap`` (registers/bits of unused space read through between two points): ``None`` means
    "as much as fits in the request", which is right when the profile lists every hole.
    """
    max_registers = max(1, min(max_registers, _REGISTER_LIMIT))
    max_bits = max(1, min(max_bits, _BIT_LIMIT))
    by_table: dict[str, list[Point]] = {}
    for point in points:
        if point.table is not None:
            by_table.setdefault(point.table, []).append(point)
    blocks: list[Block] = []
    for table in sorted(by_table):
        limit = max_bits if table in ("coil", "discrete_input") else max_registers
        ordered = sorted(by_table[table], key=lambda p: (p.address, p.register_count))
        current: list[Point] = []
        start = end = 0
        for point in ordered:
            p_end = point.address + point.register_count
            if current:
                gap = point.address - end
                new_end = max(end, p_end)
                fits = new_end - start <= limit
                gap_ok = max_gap is None or gap <= max_gap
                if fits and gap_ok and not _crosses_hole(holes, table, start, new_end - start):
                    current.append(point)
                    end = new_end
                    continue
                blocks.append(_block(table, start, end, current))
            current, start, end = [point], point.address, p_end
        if current:
            blocks.append(_block(table, start, end, current))
    return blocks


def _block(table: str, start: int, end: int, points: list[Point]) -> Block:
    return Block(table, start, end - start, tuple((p, p.address - start) for p in points))


def split(block: Block) -> list[Block]:
    """One block per point: the fallback when a device refuses a block it should serve (exception 02
    from an undeclared hole), so the good points keep being read and only the bad one is flagged."""
    return [Block(block.table, p.address, p.register_count, ((p, 0),)) for p, _ in block.points]
