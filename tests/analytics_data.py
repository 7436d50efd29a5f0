"""Deterministic tables for the dataset-question tests and benchmark: sales orders (CSV, ISO dates),
a customer survey (CSV, US month/day/year dates) and a sensor log (JSON Lines, timestamps)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path

REGIONS = ["North", "South", "East", "West"]
PRODUCTS = ["Widget", "Gadget", "Gizmo"]
CHANNELS = ["Online", "Store"]
LIST_PRICES = {"Widget": 12.5, "Gadget": 40.0, "Gizmo": 99.0}
COUNTRIES = ["United States", "United Kingdom", "Germany", "France", "Japan"]
PLANS = ["Free", "Pro", "Enterprise"]
SENSORS = {"S1": "Lab", "S2": "Roof", "S3": "Basement", "S4": "Garage"}


def write_sales(path: Path, rows: int = 3000, seed: int = 11) -> Path:
    """Orders from 2023-01-01 to 2024-12-31: order_id, date, region, product, channel, units,
    list_price, unit_price (after a discount) and revenue."""
    rng = random.Random(seed)
    start = dt.date(2023, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "order_id",
                "date",
                "region",
                "product",
                "channel",
                "units",
                "list_price",
                "unit_price",
                "revenue",
            ]
        )
        for i in range(rows):
            day = start + dt.timedelta(days=rng.randrange(731)) if i else dt.date(2024, 12, 31)
            product = rng.choice(PRODUCTS)
            units = rng.randint(1, 20)
            unit_price = round(LIST_PRICES[product] * rng.choice([1.0, 0.9, 0.8]), 2)
            w.writerow([
                1000 + i, day.isoformat(), rng.choice(REGIONS), product, rng.choice(CHANNELS), units,
                LIST_PRICES[product], unit_price, round(units * unit_price, 2),
            ])  # fmt: skip
    return path


def write_survey(path: Path, rows: int = 600, seed: int = 12) -> Path:
    """Responses during 2024: respondent_id, submitted (MM/DD/YYYY), age, country, plan, satisfaction
    (1-5), nps (0-10), would_recommend (yes/no) and a free-text comment."""
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["respondent_id", "submitted", "age", "country", "plan", "satisfaction", "nps",
                    "would_recommend", "comment"])  # fmt: skip
        for i in range(rows):
            day = start + dt.timedelta(days=rng.randrange(366))
            nps = rng.randint(0, 10)
            w.writerow([
                f"R{i:04d}", day.strftime("%m/%d/%Y"), rng.randint(18, 75), rng.choice(COUNTRIES),
                rng.choice(PLANS), rng.randint(1, 5), nps, "yes" if nps >= 7 else "no",
                f"comment number {i} about {rng.choice(['speed', 'price', 'support', 'docs'])}",
            ])  # fmt: skip
    return path


def write_sensors(path: Path, days: int = 90, seed: int = 13) -> Path:
    """Hourly readings of four sensors from 2024-01-01: timestamp, sensor, location, temperature_c,
    humidity and battery (percent), as JSON Lines."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1)
    with path.open("w", encoding="utf-8") as f:
        for hour in range(days * 24):
            ts = start + dt.timedelta(hours=hour)
            for sensor, location in SENSORS.items():
                base = {"Lab": 21.0, "Roof": 8.0, "Basement": 14.0, "Garage": 11.0}[location]
                record = {
                    "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                    "sensor": sensor,
                    "location": location,
                    "temperature_c": round(base + rng.gauss(0, 6) + hour / 240, 2),
                    "humidity": round(rng.uniform(20, 90), 1),
                    "battery": max(0, 100 - hour // 24 - rng.randint(0, 3)),
                }
                f.write(json.dumps(record) + "\n")
    return path
