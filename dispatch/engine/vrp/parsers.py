"""Readers for the two benchmark file formats. Every error names the file and the line.

- Solomon in VRPLIB text (`KEY : VALUE` header, NODE_COORD/DEMAND/TIME_WINDOW/DEPOT sections,
  optional SERVICE_TIME_SECTION), as CVRPLIB and PyVRP/Instances ship it; node 1 is the depot.
- Li & Lim (SINTEF TOP): a `vehicles capacity speed` line, then one task a line:
  `id x y demand ready due service pickup delivery`; task 0 is the depot. A pickup names its
  delivery, the delivery names its pickup, and their demands cancel.
"""

import math
from pathlib import Path

from dispatch.engine.vrp.instance import Family, Instance


class VrpFormatError(ValueError):
    """A malformed instance file; the message names the file and the line."""


def read_instance(path: Path | str, family: Family) -> Instance:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VrpFormatError(f"{path}: cannot read: {exc}") from None
    if family == "solomon":
        return parse_solomon(text, name=str(path))
    if family == "lilim":
        return parse_lilim(text, name=str(path))
    raise ValueError(f"unknown family {family!r}")


class _Where:
    def __init__(self, name: str):
        self.name = name
        self.line = 0

    def error(self, message: str, line: int | None = None) -> VrpFormatError:
        return VrpFormatError(f"{self.name}, line {line if line is not None else self.line}: {message}")

    def integer(self, token: str, what: str) -> int:
        try:
            value = float(token)
        except ValueError:
            raise self.error(f"{what}: not a number: {token!r}") from None
        if not value.is_integer():
            raise self.error(f"{what}: expected a whole number, got {token!r}")
        return int(value)

    def number(self, token: str, what: str) -> float:
        try:
            value = float(token)
        except ValueError:
            raise self.error(f"{what}: not a number: {token!r}") from None
        if not math.isfinite(value):
            raise self.error(f"{what}: not finite: {token!r}")
        return value


_HEADER = {"NAME", "TYPE", "COMMENT", "DIMENSION", "VEHICLES", "CAPACITY", "SERVICE_TIME", "EDGE_WEIGHT_TYPE"}
_SECTIONS = {
    "NODE_COORD_SECTION": 3,
    "DEMAND_SECTION": 2,
    "TIME_WINDOW_SECTION": 3,
    "SERVICE_TIME_SECTION": 2,
}


def parse_solomon(text: str, *, name: str) -> Instance:
    at = _Where(name)
    header: dict[str, str] = {}
    header_line: dict[str, int] = {}
    section_line: dict[str, int] = {}
    sections: dict[str, dict[int, list[str]]] = {}
    depots: list[int] = []
    current = None
    for at.line, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "EOF":
            break
        if ":" in line and current is None:
            key, _, value = (p.strip() for p in line.partition(":"))
            if key not in _HEADER:
                raise at.error(f"unknown header field {key!r}")
            header[key], header_line[key] = value, at.line
            continue
        if line in _SECTIONS or line == "DEPOT_SECTION":
            if line in sections or (line == "DEPOT_SECTION" and current == "done-depot"):
                raise at.error(f"{line} given twice")
            current = line
            section_line[line] = at.line
            if line != "DEPOT_SECTION":
                sections[line] = {}
            continue
        if current is None:
            raise at.error(f"expected a header field or a section, got {line!r}")
        tokens = line.split()
        if current == "DEPOT_SECTION":
            if len(tokens) != 1:
                raise at.error(f"DEPOT_SECTION: expected one node id, got {line!r}")
            node = at.integer(tokens[0], "depot id")
            if node == -1:
                current = "done-depot"
            else:
                depots.append(node)
            continue
        if current == "done-depot":
            raise at.error(f"unexpected line after DEPOT_SECTION: {line!r}")
        want = _SECTIONS[current]
        if len(tokens) != want:
            raise at.error(f"{current}: expected {want} values, got {len(tokens)}")
        node = at.integer(tokens[0], "node id")
        if node in sections[current]:
            raise at.error(f"{current}: node {node} given twice")
        sections[current][node] = [*tokens[1:], str(at.line)]
    end = at.line
    for key in ("DIMENSION", "CAPACITY"):
        if key not in header:
            raise at.error(f"missing header field {key}", line=end)

    def field(key: str, default: str) -> int:
        at.line = header_line.get(key, end)
        return at.integer(header.get(key, default), key)

    at.line = header_line.get("EDGE_WEIGHT_TYPE", end)
    if header.get("EDGE_WEIGHT_TYPE", "EUC_2D") != "EUC_2D":
        raise at.error(f"EDGE_WEIGHT_TYPE {header['EDGE_WEIGHT_TYPE']!r} not supported (EUC_2D only)")
    dimension = field("DIMENSION", "")
    capacity = field("CAPACITY", "")
    vehicles = field("VEHICLES", str(dimension - 1))
    default_service = field("SERVICE_TIME", "0")
    at.line = end
    if dimension < 2 or capacity <= 0 or vehicles <= 0:
        raise at.error("DIMENSION must be at least 2, CAPACITY and VEHICLES positive", line=end)
    for section in ("NODE_COORD_SECTION", "DEMAND_SECTION", "TIME_WINDOW_SECTION"):
        if section not in sections:
            raise at.error(f"missing {section}", line=end)
        got = set(sections[section])
        if got != set(range(1, dimension + 1)):
            missing = sorted(set(range(1, dimension + 1)) - got)
            extra = sorted(got - set(range(1, dimension + 1)))
            raise at.error(
                f"{section}: nodes must be 1..{dimension}; missing {missing[:5]}, unknown {extra[:5]}",
                line=section_line[section],
            )
    if len(depots) != 1:
        raise at.error(
            f"DEPOT_SECTION: expected exactly one depot, got {len(depots)}",
            line=section_line.get("DEPOT_SECTION", end),
        )
    depot = depots[0]
    if depot not in sections["NODE_COORD_SECTION"]:
        raise at.error(f"DEPOT_SECTION: depot {depot} is not a node", line=end)
    order = [depot] + [n for n in range(1, dimension + 1) if n != depot]
    cols: dict[str, list] = {k: [] for k in ("x", "y", "demand", "ready", "due", "service")}
    services = sections.get("SERVICE_TIME_SECTION", {})
    for node in order:
        *xy, at.line = sections["NODE_COORD_SECTION"][node]
        cols["x"].append(at.number(xy[0], f"node {node} x"))
        cols["y"].append(at.number(xy[1], f"node {node} y"))
        d, at.line = sections["DEMAND_SECTION"][node]
        cols["demand"].append(at.integer(d, f"node {node} demand"))
        if cols["demand"][-1] < 0 or cols["demand"][-1] > capacity:
            raise at.error(f"node {node} demand {d} outside 0..CAPACITY")
        early, late, at.line = sections["TIME_WINDOW_SECTION"][node]
        cols["ready"].append(at.integer(early, f"node {node} ready time"))
        cols["due"].append(at.integer(late, f"node {node} due time"))
        if not 0 <= cols["ready"][-1] <= cols["due"][-1]:
            raise at.error(f"node {node}: time window [{early}, {late}] is empty or negative")
        if node in services:
            s, at.line = services[node]
            cols["service"].append(at.integer(s, f"node {node} service time"))
        else:
            cols["service"].append(0 if node == depot else default_service)
        if cols["service"][-1] < 0:
            raise at.error(f"node {node}: negative service time")
    if cols["demand"][0] != 0:
        raise at.error("the depot has a demand", line=end)
    return Instance(
        name=header.get("NAME") or Path(name).stem,
        family="solomon",
        ids=tuple(order),
        capacity=capacity,
        max_vehicles=vehicles,
        **{k: tuple(v) for k, v in cols.items()},
    )


def parse_lilim(text: str, *, name: str) -> Instance:
    at = _Where(name)
    rows: list[tuple[int, list[str]]] = [
        (n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not rows:
        raise at.error("empty file", line=1)
    at.line, first = rows[0]
    if len(first) != 3:
        raise at.error(f"expected 'vehicles capacity speed', got {len(first)} values")
    vehicles = at.integer(first[0], "vehicles")
    capacity = at.integer(first[1], "capacity")
    if vehicles <= 0 or capacity <= 0:
        raise at.error("vehicles and capacity must be positive")
    tasks: dict[int, tuple] = {}
    lines: dict[int, int] = {}
    for at.line, tokens in rows[1:]:
        if len(tokens) != 9:
            raise at.error(
                f"expected 9 values (id x y demand ready due service pickup delivery), got {len(tokens)}"
            )
        tid = at.integer(tokens[0], "task id")
        if tid in tasks:
            raise at.error(f"task {tid} given twice")
        x, y = at.number(tokens[1], "x"), at.number(tokens[2], "y")
        demand, ready, due, service, pick, deliv = (
            at.integer(t, w)
            for t, w in zip(
                tokens[3:], ("demand", "ready", "due", "service", "pickup", "delivery"), strict=False
            )
        )
        if not 0 <= ready <= due or service < 0:
            raise at.error(f"task {tid}: time window [{ready}, {due}] empty or negative, or negative service")
        tasks[tid] = (x, y, demand, ready, due, service, pick, deliv)
        lines[tid] = at.line
    if 0 not in tasks:
        raise at.error("no depot (task 0)", line=rows[-1][0])
    pairs = []
    for tid, (_, _, demand, _, _, _, pick, deliv) in tasks.items():
        at.line = lines[tid]
        if tid == 0:
            if demand or pick or deliv:
                raise at.error("the depot (task 0) has a demand or a pickup/delivery partner")
            continue
        if (pick == 0) == (deliv == 0):
            raise at.error(f"task {tid}: exactly one of pickup and delivery must name a partner")
        partner = deliv or pick
        if partner not in tasks or partner == 0:
            raise at.error(f"task {tid}: partner {partner} is not a task")
        other = tasks[partner]
        if (other[6], other[7]) != ((tid, 0) if deliv else (0, tid)):
            raise at.error(f"task {tid}: partner {partner} does not name it back")
        if deliv:
            if demand <= 0 or other[2] != -demand or demand > capacity:
                raise at.error(
                    f"task {tid}: pickup demand must be in 1..capacity and its delivery's its negative"
                )
            pairs.append((tid, deliv))
    if not pairs:
        raise at.error("no pickup-and-delivery pairs", line=rows[-1][0])
    order = [0, *sorted(t for t in tasks if t != 0)]
    position = {tid: p for p, tid in enumerate(order)}
    cols = list(zip(*(tasks[t][:6] for t in order), strict=True))
    return Instance(
        name=Path(name).stem,
        family="lilim",
        ids=tuple(order),
        x=cols[0],
        y=cols[1],
        demand=cols[2],
        ready=cols[3],
        due=cols[4],
        service=cols[5],
        capacity=capacity,
        max_vehicles=vehicles,
        pairs=tuple(sorted((position[p], position[d]) for p, d in pairs)),
    )
