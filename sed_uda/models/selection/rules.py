"""Model-selection rules: which validation signal picks the checkpoint that gets tested.

Unsupervised domain adaptation has no target labels to select with, so the default rules use
signals available without them. `target_oracle` selects on target-language validation labels and
`target_test_oracle` on the target test labels it then reports, as the poster's code did; results
selected either way are marked as oracle numbers everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SelectionRule:
    """A validation metric (logged as `<direction>/val/<metric>`) and whether higher is better."""

    name: str
    metric: str
    mode: str
    uses_target_labels: bool
    description: str

    def monitor(self, direction: str) -> str:
        """The logged key this rule watches for a direction such as `en2zh`."""
        return f"{direction}/val/{self.metric}"


RULES: dict[str, SelectionRule] = {
    rule.name: rule
    for rule in (
        SelectionRule("source_acc", "source_acc", "max", False, "source-language validation accuracy"),
        SelectionRule(
            "target_im",
            "target_im",
            "max",
            False,
            "information maximisation (diversity minus entropy) on unlabelled target-train",
        ),
        SelectionRule(
            "target_entropy", "target_entropy", "min", False, "mean prediction entropy on unlabelled target"
        ),
        SelectionRule(
            "target_snd",
            "target_snd",
            "max",
            False,
            "soft neighbourhood density of predictions on unlabelled target-train (Saito et al. 2021)",
        ),
        SelectionRule(
            "dev",
            "dev_risk",
            "min",
            False,
            "deep embedded validation: source validation loss weighted to the target (You et al. 2019)",
        ),
        SelectionRule(
            "target_oracle", "target_acc", "max", True, "ORACLE: target-language validation labels"
        ),
        SelectionRule(
            "target_test_oracle",
            "target_test_acc",
            "max",
            True,
            "ORACLE, the poster's protocol: target-language test labels",
        ),
    )
}
DEFAULT_RULE = "target_im"
"""The label-free rule that ranked checkpoints best on the bundled corpus (README, section 5)."""


def get_rule(name: str) -> SelectionRule:
    """The rule called `name`, or a ValueError listing the known ones."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown selection rule {name!r}; choose one of {', '.join(RULES)}") from None
