"""Regions: province -> prefecture -> county -> township -> village."""
