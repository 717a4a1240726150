"""Synthetic data: a realistic poor county for the demo and tests, and millions of
households streamed to Parquet for the measurement benchmarks."""

from .county import SynthCounty, synth_county, write_regions, write_register
from .parquet import stream_parquet

__all__ = ["SynthCounty", "stream_parquet", "synth_county", "write_regions", "write_register"]
