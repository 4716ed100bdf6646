"""Option checks of the Keras front: the shared ones of ``seglosses._spec`` (so the same mistake
gets the same text on both fronts; tests/keras_front/test_keras_errors.py compares them), plus
the one Keras-only refusal. Nothing here imports a framework."""

from __future__ import annotations

from .. import _spec as spec
from .._spec import (
    check_alpha,
    check_alpha_length,
    check_compound,
    check_flags,
    check_pixel_options,
    check_weight_values,
    fail,
)

as_float_list = spec.option_values


def check_region_options(function, **options):
    spec.check_region_options(function, **options)  # the torch front's texts first
    if options["aggregate"] == "global":
        raise fail(function, "aggregate", "be 'image' or 'batch' in Keras", repr("global"),
                   "'global' sums the statistics over torch.distributed ranks; Keras has no "
                   "process group (under a distribution strategy each replica would see its "
                   "own shard only), so use 'batch'.")


__all__ = ["as_float_list", "check_alpha", "check_alpha_length", "check_compound", "check_flags",
           "check_pixel_options", "check_region_options", "check_weight_values"]
