"""The benchmark VRP engine: parsers (and their errors), the independent checker (on the
best-known solutions and on hand-broken ones), the solver's feasibility on every fixture, and
the `solve_vrp` command. No database needed."""

import csv
import json
import math
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dispatch.engine.vrp.checker import check
from dispatch.engine.vrp.instance import arc_tenths
from dispatch.engine.vrp.parsers import VrpFormatError, parse_lilim, parse_solomon, read_instance
from dispatch.engine.vrp.solver import solve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vrp"
SOLOMON = ["C101", "R101", "RC201"]
LILIM = {"lc101": "lc101.10_828.9369.txt", "lr201": "lr201.4_1253.234.txt"}


def best_known() -> dict[str, tuple[int, float]]:
    """bks.csv rows in this project's conventions (Solomon: the DIMACS distance-only rows)."""
    out = {}
    with (FIXTURES / "bks.csv").open() as f:
        for row in csv.DictReader(f):
            if row["instance"] not in out:  # the DIMACS Solomon row comes first
                out[row["instance"]] = (int(row["vehicles"]), float(row["distance"]))
    return out


def read_best_routes(instance, path: Path, offset: int) -> list[list[int]]:
    """A `.sol` / SINTEF solution's routes as positions (Solomon .sol numbers customers id - 1)."""
    position = {node: p for p, node in enumerate(instance.ids)}
    return [
        [position[int(t) + offset] for t in line.split(":", 1)[1].split()]
        for line in path.read_text().splitlines()
        if line.startswith("Route")
    ]


def load(name: str):
    if name in LILIM:
        return read_instance(FIXTURES / f"{name}.txt", "lilim")
    return read_instance(FIXTURES / f"{name}.vrp", "solomon")


def best_routes(name: str):
    instance = load(name)
    if name in LILIM:
        return instance, read_best_routes(instance, FIXTURES / LILIM[name], 0)
    return instance, read_best_routes(instance, FIXTURES / f"{name}.sol", 1)


# --- parsers -----------------------------------------------------------------------------------


def header(instance):
    return instance.name, instance.family, instance.size, instance.capacity, instance.max_vehicles


def test_solomon_parser_reads_the_vrplib_file():
    c101 = load("C101")
    assert header(c101) == ("C101", "solomon", 101, 200, 25)
    assert c101.ids[0] == 1 and (c101.x[0], c101.y[0]) == (40, 50)
    assert (c101.demand[0], c101.ready[0], c101.due[0], c101.service[0]) == (0, 0, 1236, 0)
    assert (c101.ids[1], c101.demand[1], c101.ready[1], c101.due[1], c101.service[1]) == (2, 10, 912, 967, 90)
    assert c101.pairs == ()


def test_lilim_parser_reads_pairs():
    lc101 = load("lc101")
    assert header(lc101) == ("lc101", "lilim", 107, 200, 25)
    assert len(lc101.pairs) == 53
    for p, d in lc101.pairs:
        assert lc101.demand[p] > 0 and lc101.demand[d] == -lc101.demand[p]
    assert sorted(x for pair in lc101.pairs for x in pair) == list(range(1, 107))


def test_truncated_arcs_are_exact():
    assert arc_tenths(3, 4) == 50 and arc_tenths(1, 1) == 14 and arc_tenths(0.3, 0.4) == 5
    r101 = load("R101")
    assert r101.arc(0, 1) == arc_tenths(r101.x[0] - r101.x[1], r101.y[0] - r101.y[1]) / 10


SOLOMON_OK = """NAME : T1
TYPE : CVRPTW
DIMENSION : 3
VEHICLES : 2
CAPACITY : 10
SERVICE_TIME : 5
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 3 4
3 0 10
DEMAND_SECTION
1 0
2 4
3 7
TIME_WINDOW_SECTION
1 0 100
2 0 20
3 10 40
DEPOT_SECTION
1
-1
EOF
"""


def test_a_tiny_solomon_file_parses():
    t = parse_solomon(SOLOMON_OK, name="t1.vrp")
    assert (t.ids, t.demand, t.service, t.due) == ((1, 2, 3), (0, 4, 7), (0, 5, 5), (100, 20, 40))


LILIM_OK = "2\t10\t1\n0\t0\t0\t0\t0\t100\t0\t0\t0\n1\t3\t4\t5\t0\t50\t2\t0\t2\n2\t0\t10\t-5\t0\t80\t2\t1\t0\n"


def test_a_tiny_lilim_file_parses():
    t = parse_lilim(LILIM_OK, name="t.txt")
    assert (t.ids, t.pairs, t.demand) == ((0, 1, 2), ((1, 2),), (0, 5, -5))


@pytest.mark.parametrize(
    "family, broken, line, message",
    [
        ("solomon", SOLOMON_OK.replace("2 3 4", "2 3 four"), 10, "node 2 y: not a number"),
        ("solomon", SOLOMON_OK.replace("3 7\n", "3 7 1\n"), 15, "expected 2 values"),
        ("solomon", SOLOMON_OK.replace("3 10 40", "3 50 40"), 19, "empty"),
        ("solomon", SOLOMON_OK.replace("CAPACITY : 10", "CAPACITY : ten"), 5, "CAPACITY: not a number"),
        ("solomon", SOLOMON_OK.replace("2 4\n", ""), 12, "missing [2]"),
        ("solomon", SOLOMON_OK.replace("TYPE : CVRPTW", "COLOUR : red"), 2, "unknown header"),
        ("solomon", SOLOMON_OK.replace("2 4\n", "2 11\n"), 14, "outside 0..CAPACITY"),
        ("solomon", SOLOMON_OK.split("DEPOT_SECTION")[0], 19, "expected exactly one depot"),
        ("lilim", LILIM_OK.replace("2\t10\t1", "2\t10"), 1, "vehicles capacity speed"),
        ("lilim", LILIM_OK.replace("\t-5\t", "\t-4\t"), 3, "its negative"),
        ("lilim", LILIM_OK.replace("\t2\t1\t0\n", "\t2\t0\t0\n"), 3, "does not name it back"),
        ("lilim", LILIM_OK.replace("\t2\t1\t0\n", "\t2\t1\t1\n"), 3, "does not name it back"),
        (
            "lilim",
            LILIM_OK.replace("\t0\t50\t2\t0\t2\n", "\t0\t50\t2\t0\t0\n"),
            3,
            "exactly one of pickup and delivery",
        ),
        ("lilim", LILIM_OK.replace("1\t3\t4", "1\t3\tfour"), 3, "y: not a number"),
        ("lilim", LILIM_OK + "3\t1\t1\n", 5, "expected 9 values"),
        ("lilim", LILIM_OK.replace("\t0\t80\t", "\t90\t80\t"), 4, "empty"),
        ("lilim", LILIM_OK + LILIM_OK.splitlines()[2] + "\n", 5, "given twice"),
        ("lilim", "\n".join(LILIM_OK.splitlines()[:2]) + "\n", 2, "no pickup-and-delivery pairs"),
    ],
)
def test_malformed_files_name_the_line(family, broken, line, message):
    parse, name = (parse_solomon, "t1.vrp") if family == "solomon" else (parse_lilim, "t.txt")
    with pytest.raises(VrpFormatError) as err:
        parse(broken, name=name)
    assert str(err.value).startswith(f"{name}, line {line}: ")
    assert message in str(err.value)


def test_unreadable_file_is_a_format_error(tmp_path):
    (tmp_path / "x.vrp").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(VrpFormatError, match=r"x\.vrp: cannot read"):
        read_instance(tmp_path / "x.vrp", "solomon")


# --- checker -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOLOMON + list(LILIM))
def test_checker_accepts_the_best_known_solutions_at_their_cost(name):
    instance, routes = best_routes(name)
    report = check(instance, routes)
    vehicles, distance = best_known()[name]
    assert report.feasible, report.violations
    assert report.vehicles == vehicles
    assert report.distance == pytest.approx(distance, abs=1e-3 if name in LILIM else 1e-9)


def test_checker_uses_each_family_distance_convention():
    instance, routes = best_routes("C101")
    unrounded = sum(
        math.hypot(instance.x[a] - instance.x[b], instance.y[a] - instance.y[b])
        for route in routes
        for a, b in zip((0, *route), (*route, 0), strict=False)
    )
    assert check(instance, routes).distance == pytest.approx(827.3)  # truncated arcs
    assert unrounded == pytest.approx(828.94, abs=0.01)  # the same routes, unrounded (SINTEF)
    lilim, lilim_routes = best_routes("lc101")
    assert check(lilim, lilim_routes).distance == pytest.approx(828.9369, abs=1e-4)  # not truncated


def test_checker_catches_each_violation():
    c101, routes = best_routes("C101")
    missing = [list(r) for r in routes]
    missing[0].pop()
    assert any("not visited" in v for v in check(c101, missing).violations)
    twice = [list(r) for r in routes]
    twice[1].append(twice[0][0])
    assert any("visited twice" in v for v in check(c101, twice).violations)
    assert any("not a customer" in v for v in check(c101, [*routes[:-1], [*routes[-1], 0]]).violations)
    assert any("empty" in v for v in check(c101, [*routes, []]).violations)
    # one route carrying everything: over capacity and late
    merged = check(c101, [[p for r in routes for p in r]]).violations
    assert any("exceeds the capacity" in v for v in merged)
    assert any("after its window ends" in v for v in merged)
    # a route driven backwards: the same customers, in windows long closed
    late = [list(reversed(routes[0])), *routes[1:]]
    report = check(c101, late)
    assert any("route 1: node" in v and "after its window ends" in v for v in report.violations)
    assert not any("capacity" in v for v in report.violations)
    # a depot that closes early
    early = load("C101")
    from dataclasses import replace

    closing = replace(early, due=(500, *early.due[1:]))
    assert any("back at the depot" in v for v in check(closing, routes).violations)
    too_few = replace(early, max_vehicles=9)
    assert any("more than the 9 vehicles" in v for v in check(too_few, routes).violations)

    lc101, pd_routes = best_routes("lc101")
    pickup, delivery = lc101.pairs[0]
    route = next(r for r in pd_routes if pickup in r)
    flipped = [list(r) for r in pd_routes]
    k = flipped.index(list(route))
    i, j = flipped[k].index(pickup), flipped[k].index(delivery)
    flipped[k][i], flipped[k][j] = delivery, pickup
    assert any("before its pickup" in v for v in check(lc101, flipped).violations)
    split = [list(r) for r in pd_routes]
    split[k].remove(delivery)
    split[(k + 1) % len(split)].append(delivery)
    assert any("on routes" in v for v in check(lc101, split).violations)


# --- solver ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOLOMON + list(LILIM))
def test_solver_returns_a_feasible_solution_quickly(name):
    instance = load(name)
    solved = solve(instance, time_limit=0.5)
    report = check(instance, solved.routes)
    assert report.feasible, report.violations
    vehicles, distance = best_known()[name]
    if name in LILIM:  # fewest vehicles first: nobody beats the best known count by luck
        assert report.vehicles >= vehicles
    else:  # the DIMACS best known distances are optimal
        assert report.distance >= distance - 1e-9
    assert report.distance <= 1.3 * distance  # and half a second, even on a busy machine, is close
    assert solved.seconds < 5


def test_solver_runs_in_one_process_too():
    instance = load("lr201")
    report = check(instance, solve(instance, time_limit=0.3, workers=1).routes)
    assert report.feasible and report.vehicles <= 6


# --- command -----------------------------------------------------------------------------------


def test_command_prints_one_json_line_per_file():
    out = StringIO()
    files = [str(FIXTURES / "C101.vrp"), str(FIXTURES / "RC201.vrp")]
    call_command("solve_vrp", *files, format="solomon", time_limit="0.3", json=True, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ["C101", "RC201"], strict=True):
        result = json.loads(line)
        assert set(result) == {"instance", "vehicles", "distance", "routes", "seconds"}
        assert result["instance"] == name and result["vehicles"] == len(result["routes"])
        visited = sorted(n for route in result["routes"] for n in route)
        assert visited == list(range(2, 102))  # node ids as in the file, depot (1) left out
        instance = load(name)
        position = {node: p for p, node in enumerate(instance.ids)}
        report = check(instance, [[position[n] for n in route] for route in result["routes"]])
        assert report.feasible and result["distance"] == pytest.approx(report.distance)


def test_command_prints_a_plain_line_without_json():
    out = StringIO()
    call_command("solve_vrp", str(FIXTURES / "C101.vrp"), format="solomon", time_limit="0.3", stdout=out)
    assert re.fullmatch(r"C101: \d+ vehicles, distance \d+\.\d \(\d+\.\d+ s\)\n", out.getvalue())


def test_command_lilim_ids_are_the_file_ids():
    out = StringIO()
    call_command(
        "solve_vrp", str(FIXTURES / "lr201.txt"), format="lilim", time_limit="0.4", json=True, stdout=out
    )
    result = json.loads(out.getvalue())
    assert result["instance"] == "lr201"
    assert sorted(n for route in result["routes"] for n in route) == list(range(1, 103))


def test_command_rejects_a_malformed_file_naming_file_and_line(tmp_path):
    bad = tmp_path / "broken.vrp"
    bad.write_text(SOLOMON_OK.replace("3 10 40", "3 10 forty"))
    with pytest.raises(CommandError, match=r"broken.vrp, line 19: node 3 due time: not a number"):
        call_command("solve_vrp", str(FIXTURES / "C101.vrp"), str(bad), format="solomon", time_limit="0.2")
    with pytest.raises(CommandError, match=r"lc101.txt, line 1"):
        call_command("solve_vrp", str(FIXTURES / "lc101.txt"), format="solomon")
    with pytest.raises(CommandError, match=r"missing.vrp: cannot read"):
        call_command("solve_vrp", str(tmp_path / "missing.vrp"), format="solomon")
    with pytest.raises(CommandError, match="--time-limit"):
        call_command("solve_vrp", str(FIXTURES / "C101.vrp"), format="solomon", time_limit="-1")


def test_command_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "broken.txt"
    bad.write_text(LILIM_OK.replace("\t-5\t", "\tminus\t"))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "manage.py"), "solve_vrp", str(bad), "--format", "lilim", "--json"],
        capture_output=True,
        text=True,
        env={"DEBUG": "true", "PATH": "/usr/bin:/bin", "LOGLEVEL": "WARNING"},
        cwd=root,
        timeout=60,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "CommandError" in line]
    assert errors == [f"CommandError: {bad}, line 4: demand: not a number: 'minus'"]
    assert "Traceback" not in done.stderr and done.stdout == ""
