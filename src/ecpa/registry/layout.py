"""The columnar (Parquet) layout of the registry: four tables, de-identified.

Written by ``ecpa registry export --format parquet`` and by ``ecpa synth --parquet``;
read by measurement.  No names, ID or phone numbers: households and members are keyed
by integer ids.  Enumerations are stored as their English values (dictionary-encoded).
Money is integer fen.  ``docs/registry-parquet.md`` documents it.
"""

from __future__ import annotations

import pyarrow as pa

HOUSEHOLDS = pa.schema([
    ("household_id", pa.int64()),
    ("household_number", pa.string()),
    ("province_code", pa.string()),
    ("county_code", pa.string()),
    ("township_code", pa.string()),
    ("village_code", pa.string()),
    ("status", pa.string()),  # identified / exited / monitored / returned / null
    ("status_date", pa.date32()),
    ("monitoring_category", pa.string()),
    ("risk_eliminated", pa.bool_()),
    ("main_cause", pa.string()),
    ("size", pa.int16()),
    ("child_deaths", pa.int16()),        # surveys (Global MPI); null from the registry
])

MEMBERS = pa.schema([
    ("member_id", pa.int64()),
    ("household_id", pa.int64()),
    ("relation", pa.string()),
    ("sex", pa.string()),
    ("birth_date", pa.date32()),
    ("education", pa.string()),
    ("schooling", pa.string()),
    ("health", pa.string()),
    ("disability", pa.string()),
    ("labour_ability", pa.string()),
    ("medical_insurance", pa.bool_()),
    ("monthly_wage_fen", pa.int64()),
    ("undernourished", pa.bool_()),      # surveys (Global MPI); null from the registry
])

INCOMES = pa.schema([
    ("household_id", pa.int64()),
    ("year", pa.int16()),
    ("source", pa.string()),
    ("amount_fen", pa.int64()),
])

CONDITIONS = pa.schema([
    ("household_id", pa.int64()),
    ("year", pa.int16()),
    ("housing_safe", pa.bool_()),
    ("drinking_water_safe", pa.bool_()),
    ("cooking_fuel", pa.string()),
    ("toilet", pa.string()),
    ("electricity", pa.bool_()),
    ("road_access", pa.bool_()),
    ("internet_access", pa.bool_()),
    ("food_secure", pa.bool_()),         # 不愁吃
    ("clothing_secure", pa.bool_()),     # 不愁穿
    ("medical_expense_fen", pa.int64()),  # out-of-pocket, for the year
    ("disaster_loss_fen", pa.int64()),
    ("assets_owned", pa.int16()),        # of the Global MPI's asset list
    ("cooperative_member", pa.bool_()),
    ("indoor_kitchen", pa.bool_()),
    ("tap_water", pa.bool_()),
])

# County statistics for UNDP's county index (seed 001 §IV.A); optional, rates 0..1.
COUNTIES = pa.schema([
    ("county_code", pa.string()),
    ("sanitary_toilet_rate", pa.float64()),
    ("indoor_kitchen_rate", pa.float64()),
    ("tap_water_rate", pa.float64()),
    ("mobile_internet_coverage", pa.float64()),
    ("production_facility_coverage", pa.float64()),
    ("road_coverage", pa.float64()),
    ("financial_facility_coverage", pa.float64()),
    ("night_light_density", pa.float64()),
])

TABLES = {"households": HOUSEHOLDS, "members": MEMBERS, "incomes": INCOMES,
          "conditions": CONDITIONS}
