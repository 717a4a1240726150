"""Evaluation: the effect of a program or help measure on households' income and
poverty (difference in differences, propensity-score matching, inverse-probability
weighting) from the registry's panel of households over years."""
