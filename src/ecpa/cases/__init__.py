"""Targeting procedures as reviewed cases: identification, exit, entering and leaving
monitoring, changes to key data (issue 6; seed 001 §V, seed 003 §4.2-4.3)."""
