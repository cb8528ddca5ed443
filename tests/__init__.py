"""Test suite of the soc package (a package so that ``tests.servers`` imports as a pytest plugin)."""
