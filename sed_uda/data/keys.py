"""Names shared by the data module and the model: batch keys and evaluation loaders.

Training batch:   {"labelled": {"x", "lengths", "y", "speaker"}, "unlabelled": {"x", "lengths", "speaker"}}
                  ("unlabelled" only for models that adapt; it never carries "y")
Evaluation batch: {"x", "lengths", "y"}, or {"x", "lengths"} for the unlabelled loader
x is (batch, channels, frames) float (float32 in training; evaluation batches keep the cache's
float16 and models cast), lengths the valid frames of each row (int64),
y the emotion index in `sed_uda.corpus.layout.EMOTIONS`, speaker the index of the utterance's
(language, speaker) among the corpus's speakers (`CrossLingualDataModule.speaker_ids`).
"""

from __future__ import annotations

LABELLED = "labelled"
UNLABELLED = "unlabelled"

VAL_LOADERS: tuple[str, ...] = ("source", "target", "target_unlabelled", "target_test")
"""Validation dataloaders in order: source val, target val (labels for evaluation only),
target train without labels (for label-free model selection), and target test, scored every epoch
only so that the poster's protocol (select on target test labels) can be reproduced as a marked
oracle; it never feeds training."""

TEST_LOADERS: tuple[str, ...] = ("source", "target")
"""Test dataloaders in order: source test, target test."""


def direction_name(source: str, target: str) -> str:
    """`en2zh` style name of an adaptation direction."""
    return f"{source}2{target}"
