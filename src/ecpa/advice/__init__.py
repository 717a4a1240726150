"""Expert advice for villagers (seed 001 §IV.D): farming guidance and legal help asked from
a village's page, answered by the county."""
