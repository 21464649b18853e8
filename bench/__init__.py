"""Benchmarks (``make bench``): not part of the test suite; each writes a markdown table."""
