"""Datasets: sources, DuckDB tables, Croissant descriptions and splits.

The modules here import no Django except where they say so.
"""
