"""Poverty measurement: income poverty (FGT), the "two no worries, three guarantees",
the Alkire-Foster multidimensional index, UNDP's county index and dynamic monitoring."""
