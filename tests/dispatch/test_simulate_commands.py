"""import_mdrplib and simulate on the bundled MDRPLIB day, end to end (no database needed)."""

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dispatch.engine.mdrplib import read_instance, to_latlon, to_xy
from dispatch.engine.orders_csv import read_couriers, read_orders
from dispatch.engine.simulation import SimConfig, simulate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mdrplib" / "0o100t100s1p100"
ORIGIN = (41.88, -87.63)
KEYS = {
    "orders",
    "delivered",
    "mean_click_to_door_min",
    "p90_click_to_door_min",
    "on_time_pct",
    "mean_ready_to_pickup_min",
    "orders_per_courier_hour",
    "earnings_per_courier_hour",
    "seconds",
}


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mdrplib")
    call_command("import_mdrplib", str(FIXTURE), origin="41.88,-87.63", date="2024-05-01", out=str(out))
    return out


def tab_rows(name):
    lines = (FIXTURE / name).read_text().splitlines()
    return [line.split("\t") for line in lines[1:] if line.strip()]


def test_import_round_trip(csv_dir):
    orders = read_orders((csv_dir / "orders.csv").read_text())
    couriers = read_couriers((csv_dir / "couriers.csv").read_text())
    assert len(orders) == len(tab_rows("orders.txt")) == 505
    assert len(couriers) == len(tab_rows("couriers.txt")) == 113
    restaurants = {r[0]: (float(r[1]), float(r[2])) for r in tab_rows("restaurants.txt")}
    by_id = {o.order_id: o for o in orders}
    for oid, x, y, placed, restaurant, ready in tab_rows("orders.txt"):
        o = by_id[oid]
        assert to_xy(o.dropoff_lat, o.dropoff_lon, ORIGIN) == pytest.approx((float(x), float(y)), abs=0.05)
        assert to_xy(o.pickup_lat, o.pickup_lon, ORIGIN) == pytest.approx(restaurants[restaurant], abs=0.05)
        assert (o.placed_at.hour * 60 + o.placed_at.minute, o.ready_at.hour * 60 + o.ready_at.minute) == (
            int(placed),
            int(ready),
        )
    c1 = next(c for c in couriers if c.courier_id == "c3")
    assert (c1.start_at.hour * 60 + c1.start_at.minute, c1.end_at.hour * 60 + c1.end_at.minute) == (30, 210)
    assert to_latlon(*to_xy(41.9, -87.6, ORIGIN), ORIGIN) == pytest.approx((41.9, -87.6))


def test_import_errors_are_clear_and_nothing_is_written(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("restaurants.txt", "couriers.txt", "instance_parameters.txt"):
        (broken / name).write_text((FIXTURE / name).read_text())
    lines = (FIXTURE / "orders.txt").read_text().splitlines()
    cells = lines[3].split("\t")
    lines[3] = "\t".join([*cells[:4], "r999", *cells[5:]])  # file line 4
    (broken / "orders.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(CommandError, match=r"orders.txt, line 4: unknown restaurant 'r999'"):
        call_command("import_mdrplib", str(broken), origin="41.88,-87.63", date="2024-05-01", out=str(out))
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(CommandError, match="--origin"):
        call_command("import_mdrplib", str(FIXTURE), origin="north", date="2024-05-01", out=str(out))
    with pytest.raises(CommandError, match="--date"):
        call_command("import_mdrplib", str(FIXTURE), origin="41.88,-87.63", date="May 1st", out=str(out))


def run(capsys, csv_dir, policy, *extra):
    call_command(
        "simulate",
        *extra,
        orders=str(csv_dir / "orders.csv"),
        couriers=str(csv_dir / "couriers.csv"),
        policy=policy,
        json=True,
    )
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("policy", ["greedy", "optimal"])
def test_simulate_end_to_end(capsys, csv_dir, policy):
    result = run(capsys, csv_dir, policy)
    assert set(result) >= KEYS
    assert result["orders"] == 505
    assert 0.9 * 505 <= result["delivered"] <= 505
    assert 10 < result["mean_click_to_door_min"] <= result["p90_click_to_door_min"] < 120
    assert 0 <= result["on_time_pct"] <= 100
    assert result["mean_ready_to_pickup_min"] >= 0
    assert 0 < result["orders_per_courier_hour"] < 5
    pay = result["earnings_per_courier_hour"]
    assert 1500 <= pay["p10"] <= pay["mean"] <= pay["p90"]  # the guarantee is a floor
    assert result["seconds"] < 30
    again = run(capsys, csv_dir, policy)
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in result.items() if k != "seconds"
    }


def test_optimal_beats_greedy_on_the_fixture_day():
    orders, couriers = read_instance(FIXTURE, origin=ORIGIN, day=date(2024, 5, 1))
    greedy = simulate(orders, couriers, SimConfig(policy="greedy"))
    optimal = simulate(orders, couriers, SimConfig(policy="optimal"))
    assert optimal["on_time_pct"] > greedy["on_time_pct"]
    assert optimal["mean_click_to_door_min"] < greedy["mean_click_to_door_min"]


def test_simulate_reports_bad_csv_with_line_and_field(tmp_path, csv_dir):
    text = (csv_dir / "orders.csv").read_text().splitlines()
    text[5] = text[5].replace("41.", "141.", 1)
    bad = tmp_path / "orders.csv"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(CommandError, match=r"orders.csv, line 6, field pickup_lat: out of range"):
        call_command(
            "simulate", orders=str(bad), couriers=str(csv_dir / "couriers.csv"), policy="greedy", json=True
        )


def test_settlement_flags(capsys, csv_dir):
    result = run(capsys, csv_dir, "greedy", "--pay-per-order-minor", "0", "--guaranteed-hourly-minor", "2000")
    pay = result["earnings_per_courier_hour"]
    assert pay["mean"] == pay["p10"] == pay["p90"] == 2000


# --- the instance's parameters are the defaults -------------------------------------------------


def test_import_takes_the_simulation_settings_from_the_instance(csv_dir):
    # instance_parameters.txt: 320 m/min, 4 and 4 service minutes, target 40, maximum 90, $10, $15/h
    assert json.loads((csv_dir / "simulation.json").read_text()) == {
        "speed_mps": pytest.approx(320 / 60),
        "pickup_service_s": 240,
        "dropoff_service_s": 240,
        "target_minutes": 40,
        "maximum_click_to_door_minutes": 90,
        "pay_per_order_minor": 1000,
        "guaranteed_hourly_minor": 1500,
    }


@pytest.fixture
def richer_instance(tmp_path):
    """The fixture day with other parameters: faster couriers, shorter stops, better pay."""
    instance = tmp_path / "instance"
    shutil.copytree(FIXTURE, instance)
    header = (FIXTURE / "instance_parameters.txt").read_text().splitlines()[0]
    (instance / "instance_parameters.txt").write_text(f"{header}\n600\t2\t3\t30\t60\t12\t25\n")
    return instance


def test_flags_override_the_instance_and_simulate_runs_with_the_result(capsys, tmp_path, richer_instance):
    out = tmp_path / "out"
    call_command(
        "import_mdrplib",
        str(richer_instance),
        "--target-minutes",
        "45",
        origin="41.88,-87.63",
        date="2024-05-01",
        out=str(out),
    )
    assert "speed_mps=10" in capsys.readouterr().out
    settings = json.loads((out / "simulation.json").read_text())
    assert settings == {
        "speed_mps": 10.0,
        "pickup_service_s": 120,
        "dropoff_service_s": 180,
        "target_minutes": 45,  # the flag
        "maximum_click_to_door_minutes": 60,
        "pay_per_order_minor": 1200,
        "guaranteed_hourly_minor": 2500,
    }
    # simulate reads simulation.json beside the orders: the guarantee is $25/h now.
    pay = run(capsys, out, "greedy")["earnings_per_courier_hour"]
    assert pay["p10"] >= 2500
    # ... and its own flags win over the file.
    zero = run(capsys, out, "greedy", "--pay-per-order-minor", "0", "--guaranteed-hourly-minor", "0")
    assert [zero["earnings_per_courier_hour"][k] for k in ("mean", "p10", "p90")] == [0, 0, 0]
    # Faster couriers and shorter stops than the bundled day's: orders arrive sooner.
    assert (
        run(capsys, out, "greedy")["mean_click_to_door_min"]
        < run(capsys, csv_dir_of(out), "greedy")["mean_click_to_door_min"]
    )


def csv_dir_of(out):
    """The same orders and couriers under the built-in settings (no simulation.json)."""
    plain = out.parent / "plain"
    plain.mkdir(exist_ok=True)
    for name in ("orders.csv", "couriers.csv"):
        shutil.copy(out / name, plain / name)
    return plain


def test_a_bad_settings_file_is_named(tmp_path, csv_dir):
    bad = tmp_path / "simulation.json"
    bad.write_text('{"speed_mps": "fast"}')
    with pytest.raises(CommandError, match=r"simulation.json: speed_mps: expected a number"):
        call_command(
            "simulate",
            orders=str(csv_dir / "orders.csv"),
            couriers=str(csv_dir / "couriers.csv"),
            policy="greedy",
            parameters=str(bad),
        )


def test_compare_reposition_prints_both_lines_side_by_side(capsys, csv_dir):
    plain, moving = run(capsys, csv_dir, "optimal", "--compare-reposition")
    assert (plain["policy"], moving["policy"]) == ("optimal", "optimal+reposition")
    assert set(moving) >= KEYS | {"repositioning_moves"}
    assert plain["repositioning_moves"] == 0 < moving["repositioning_moves"]
    assert moving["orders"] == plain["orders"] == 505
    alone = run(capsys, csv_dir, "optimal", "--reposition")
    assert {k: v for k, v in alone.items() if k != "seconds"} == {
        k: v for k, v in moving.items() if k != "seconds"
    }
    call_command(
        "simulate",
        orders=str(csv_dir / "orders.csv"),
        couriers=str(csv_dir / "couriers.csv"),
        policy="greedy",
        compare_reposition=True,
    )
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "policy: greedy | greedy+reposition"
    assert any(line.startswith("on_time_pct: ") and " | " in line for line in table)
