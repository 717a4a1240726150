"""Duplicate households: detection of candidate pairs (same ID number, same name and
birth date in one village, same phone), a queue per region, and adjudication by an
officer (distinct, or merge keeping the history of both)."""
