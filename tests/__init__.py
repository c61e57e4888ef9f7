"""Tests of sed_uda (mirrors the package layout)."""
