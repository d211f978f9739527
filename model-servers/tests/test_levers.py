"""The GPU levers' switches that can be checked on a CPU: Inductor's options and cuDNN's autotuner
as settings, and the collector's pause accounting."""

from __future__ import annotations

import gc

import pytest

from hwai_models import backends
from hwai_models.config import ConfigError, load_settings
from hwai_models.gc_pauses import GcPauses

BASE = {"HWAI_TASK": "text-to-image", "HWAI_SERVICE": "s", "HWAI_UNIT": "u"}


def test_inductor_options_are_typed_and_a_misspelt_one_is_refused_by_name() -> None:
    assert backends.inductor_options("freezing=true, conv_1x1_as_mm=False,max_autotune_gemm_search_space=EXHAUSTIVE,x=3") == {
        "freezing": True, "conv_1x1_as_mm": False, "max_autotune_gemm_search_space": "EXHAUSTIVE", "x": 3
    }
    assert backends.inductor_options("") == {}
    import torch._inductor.config as cfg

    before = cfg.triton.cudagraphs
    try:
        backends.set_inductor_options({"triton.cudagraphs": not before})  # a nested option
        assert cfg.triton.cudagraphs is (not before)
    finally:
        cfg.triton.cudagraphs = before
    with pytest.raises(ValueError, match="no option 'freezeing'"):
        backends.set_inductor_options({"freezeing": True})
    with pytest.raises(ValueError, match="no option 'trition.cudagraphs'"):
        backends.set_inductor_options({"trition.cudagraphs": True})


def test_lever_settings_validate_their_environment_variables() -> None:
    s = load_settings({**BASE, "HWAI_INDUCTOR_OPTIONS": "freezing=true,conv_1x1_as_mm=true", "HWAI_CUDNN_BENCHMARK": "on", "HWAI_GC_FREEZE": "false"})
    assert s.inductor_options == "freezing=true,conv_1x1_as_mm=true" and s.cudnn_benchmark and not s.gc_freeze
    assert load_settings(BASE).gc_freeze and not load_settings(BASE).cudnn_benchmark  # the defaults
    with pytest.raises(ConfigError, match="HWAI_INDUCTOR_OPTIONS"):
        load_settings({**BASE, "HWAI_INDUCTOR_OPTIONS": "freezing"})  # no value
    with pytest.raises(ConfigError, match="HWAI_CUDNN_BENCHMARK"):
        load_settings({**BASE, "HWAI_CUDNN_BENCHMARK": "sometimes"})


def test_collector_pauses_are_counted_per_generation() -> None:
    pauses = GcPauses().install()
    try:
        garbage = [[] for _ in range(1000)]
        for a in garbage:
            a.append(a)  # cycles: only the collector frees them
        del garbage
        gc.collect()
        gc.collect(0)
        s = pauses.stats()
    finally:
        pauses.uninstall()
    assert s["gcFullCollections"] >= 1 and pauses.collections[0] >= 1
    assert s["gcPauseSeconds"] >= s["gcFullPauseSeconds"] > 0
    assert 0 < s["maxGcPauseMs"] <= 1000 * s["gcPauseSeconds"]
    n = pauses.collections[2]
    gc.collect()
    assert pauses.collections[2] == n  # uninstalled: no longer counting
