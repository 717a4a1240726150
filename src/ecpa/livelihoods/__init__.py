"""Livelihoods: training, entrepreneurship and employment of the members of registered
households (seed 000 §III.A.2–3, §IV), each feeding its channel of the ledger."""
