"""Which e-commerce poverty alleviation model suits a county (issue 8; seed 001 Table I,
seed 004 §3-4).  The knowledge base is a TOML file a domain expert edits."""
