"""Data quality: a library of named rules over the registry's Parquet layout, run for a
region, with worklists per village that cadres work through (issue 6)."""
