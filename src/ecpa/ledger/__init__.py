"""The ledger: double-entry, append-only, integer fen; every yuan that reaches a poor
household attributed to it and to a channel of the poverty-alleviation paths."""
