"""Front ends: one file per front end, chosen by class_path and recorded in the cache and checkpoint."""

from sed_uda.features.frontends.base import (
    FrontEnd,
    FrontEndError,
    block_slices,
    build,
    recorded,
    recorded_blocks,
)

__all__ = ["FrontEnd", "FrontEndError", "block_slices", "build", "recorded", "recorded_blocks"]
