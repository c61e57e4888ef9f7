"""Tests of sed_uda.models."""
