"""Reads that stopped being one-liners: aggregation queries for pages."""
