"""Tests of sed_uda.corpus and the ESD-tree builder they share."""
