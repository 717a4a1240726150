"""The figures the synthetic registry is calibrated to (see docs/synth.md for sources).
One place, used by both the county generator and the Parquet stream."""

from __future__ import annotations

# Household size 1..7 in poor rural areas: mean about 3.3 persons.
HOUSEHOLD_SIZE = ([1, 2, 3, 4, 5, 6, 7], [0.12, 0.22, 0.22, 0.22, 0.13, 0.06, 0.03])

# Poverty status in the registry a few years after 2020 (almost all registered households
# exited; a monitoring share of several per cent; returns rare).
STATUS = (["exited", "monitored", "identified", "returned"], [0.86, 0.08, 0.05, 0.01])
MONITORING_CATEGORY = (["unstable_exited", "marginal", "sudden_hardship"], [0.5, 0.35, 0.15])

# Main cause of poverty of registered households (illness the largest, about 42%).
MAIN_CAUSE = (
    ["illness", "lack_skills", "lack_labour", "lack_capital", "disability", "education",
     "disaster", "lack_land", "transport", "lack_water", "lack_motivation", "other"],
    [0.42, 0.13, 0.12, 0.10, 0.07, 0.05, 0.03, 0.03, 0.02, 0.01, 0.01, 0.01],
)

# Per-capita net income of registered poor households in 2019, yuan; nominal growth.
PER_CAPITA_INCOME_2019 = 9808.0
INCOME_GROWTH = 0.08
INCOME_SIGMA = 0.65  # log-normal spread: about 5% below 4,000 yuan per head in 2024
# Households under monitoring or returned earn less.
AT_RISK_INCOME_FACTOR = 0.6
# Income composition in poor rural areas, 2019: wages, net business, property, transfers.
INCOME_SHARES = {"wages": 0.353, "farming_business": 0.360, "property": 0.014,
                 "transfers": 0.273}
ECOMMERCE_HOUSEHOLD_SHARE = 0.15
ECOMMERCE_SHARE_OF_BUSINESS = (0.10, 0.40)

# Living conditions.
HOUSING_SAFE = 0.99
DRINKING_WATER_SAFE = 0.97
COOKING_FUEL = (["electric_gas", "biogas", "coal", "wood_straw"], [0.45, 0.05, 0.15, 0.35])
TOILET = (["sanitary", "non_sanitary", "none"], [0.62, 0.35, 0.03])
ELECTRICITY = 0.999
ROAD_ACCESS = 0.97
INTERNET_ACCESS = 0.90
FOOD_SECURE = 0.995
CLOTHING_SECURE = 0.997
INDOOR_KITCHEN = 0.85
TAP_WATER = 0.88
COOPERATIVE_MEMBER = 0.30
ASSETS_OWNED = ([0, 1, 2, 3, 4, 5], [0.02, 0.06, 0.22, 0.30, 0.25, 0.15])
# Out-of-pocket medical spending: most households little; serious illness much more.
MEDICAL_EXPENSE_YUAN = (300, 1500)        # log-uniform range, ordinary households
SERIOUS_MEDICAL_EXPENSE_YUAN = (5000, 40000)
DISASTER_SHARE = 0.03
DISASTER_LOSS_YUAN = (1000, 30000)
# Surveys only (Global MPI): undernourished persons, households that lost a child.
UNDERNOURISHED = 0.03
CHILD_DEATH = 0.01

# People.
SPOUSE = 0.80
MEDICAL_INSURANCE = 0.99
SCHOOL_ENROLMENT = {"primary": 0.985, "junior_secondary": 0.97, "senior": 0.80}
MIGRANT_WORK = 0.45  # share of able adults with monthly wage income
MONTHLY_WAGE = (2500, 4500)  # yuan
HEAD_PHONE = 0.80
POOR_VILLAGE_SHARE = 0.40
