"""The simulator's CSV inputs: read whole, and every bad input named by line and field."""

from datetime import UTC, datetime

import pytest

from dispatch.engine.orders_csv import CsvError, read_couriers, read_orders, write_couriers, write_orders

ORDERS = (
    "order_id,placed_at,ready_at,pickup_lat,pickup_lon,dropoff_lat,dropoff_lon\n"
    "o1,2024-05-01T11:00:00Z,2024-05-01T11:15:00Z,60.17,24.94,60.18,24.95\n"
    "o2,2024-05-01T11:05:00+00:00,2024-05-01T11:05:00,60.17,24.94,60.16,24.93\n"
)
COURIERS = "courier_id,start_at,end_at,lat,lon\nc1,2024-05-01T10:00:00Z,2024-05-01T14:00:00Z,60.17,24.94\n"


def test_good_files_read_and_round_trip():
    orders = read_orders(ORDERS)
    assert [o.order_id for o in orders] == ["o1", "o2"]
    assert orders[0].ready_at == datetime(2024, 5, 1, 11, 15, tzinfo=UTC)
    assert orders[1].ready_at.tzinfo is not None  # no offset: read as UTC
    assert read_orders(write_orders(orders)) == orders
    couriers = read_couriers(COURIERS)
    assert couriers[0].vehicle_type == ""
    assert read_couriers(write_couriers(couriers)) == couriers


def test_optional_columns():
    text = (
        "order_id,placed_at,ready_at,pickup_lat,pickup_lon,dropoff_lat,dropoff_lon,weight_kg,volume_l,value\n"
    )
    text += "o1,2024-05-01T11:00:00Z,2024-05-01T11:15:00Z,60.17,24.94,60.18,24.95,2.5,10,4500\n"
    (o,) = read_orders(text)
    assert (o.weight_kg, o.volume_l, o.value) == (2.5, 10.0, 4500)
    c = "courier_id,start_at,end_at,lat,lon,vehicle_type\nc1,2024-05-01T10:00:00Z,2024-05-01T14:00:00Z,60,24,bicycle\n"
    assert read_couriers(c)[0].vehicle_type == "bicycle"


def bad_order(cell_name, value):
    header = ["order_id", "placed_at", "ready_at", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"]
    row = dict(
        zip(
            header,
            ["o3", "2024-05-01T11:00:00Z", "2024-05-01T11:15:00Z", "60.17", "24.94", "60.18", "24.95"],
            strict=True,
        )
    )
    row[cell_name] = value
    return ORDERS + ",".join(row[h] for h in header) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (ORDERS.replace("dropoff_lon", "dropoff_lng"), 1, "dropoff_lng", "unknown column"),
        (
            ORDERS.replace(",dropoff_lon", "").replace(",24.95\n", "\n").replace(",24.93\n", "\n"),
            1,
            "dropoff_lon",
            "missing column",
        ),
        (bad_order("pickup_lat", "91"), 4, "pickup_lat", "out of range"),
        (bad_order("pickup_lon", "east"), 4, "pickup_lon", "not a number"),
        (bad_order("placed_at", "yesterday"), 4, "placed_at", "ISO 8601"),
        (bad_order("placed_at", "2024-05-01T11:00:00+02:00"), 4, "placed_at", "must be UTC"),
        (bad_order("placed_at", "1900-05-01T11:00:00Z"), 4, "placed_at", "out of range"),
        (bad_order("ready_at", "2024-05-01T10:00:00Z"), 4, "ready_at", "before placed_at"),
        (bad_order("order_id", "o1"), 4, "order_id", "duplicate"),
        (bad_order("order_id", ""), 4, "order_id", "empty"),
        (ORDERS + "o9,2024-05-01T11:00:00Z\n", 4, None, "expected 7 values"),
        ("", 1, None, "empty file"),
    ],
)
def test_order_errors_name_line_and_field(text, line, field, words):
    with pytest.raises(CsvError) as caught:
        read_orders(text)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"line {line}")


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("c2,2024-05-01T10:00:00Z,2024-05-01T09:00:00Z,60,24", "end_at", "not after start_at"),
        ("c2,2024-05-01T10:00:00Z,2024-05-01T11:00:00Z,60,190", "lon", "out of range"),
        ("c1,2024-05-01T10:00:00Z,2024-05-01T11:00:00Z,60,24", "courier_id", "duplicate"),
    ],
)
def test_courier_errors_name_line_and_field(row, field, words):
    with pytest.raises(CsvError) as caught:
        read_couriers(COURIERS + row + "\n")
    assert (caught.value.line, caught.value.field) == (3, field)
    assert words in str(caught.value)
