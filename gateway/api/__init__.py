"""Northbound REST API (DESIGN.md §3)."""
