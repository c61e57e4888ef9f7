"""Adaptation methods, each a small `nn.Module` loss in its own file (see `base.AdaptationLoss`).

Chosen in configs by `class_path` under `model.adaptations`; several can be combined, each with its
own trade-off `weight`.
"""
