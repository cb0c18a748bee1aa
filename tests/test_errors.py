"""Bad input fails early with a ValueError/TypeError naming the parameter and its valid range."""

from __future__ import annotations

import pytest

import allocsim.page_alloc as page_alloc
from allocsim.mmzone import CountingZone, Zone
from allocsim.page_alloc import (
    int_sqrt,
    min_free_kbytes,
    rounddown_pow_of_two,
    setup_pageset,
    setup_per_zone_lowmem_reserve,
    setup_per_zone_wmarks,
    zone_batchsize,
)
from allocsim.patches import Patches
from allocsim.vmstat import calculate_pressure_threshold, calculate_threshold, drift_mark, fls

zone_watermark_ok_arith = getattr(page_alloc, "__zone_watermark_ok")

# Values that are not integers: a float (even an integral one), a string, a bool, None.
NON_INTEGERS = [1.0, 2.5, "4", True, None]

# check_int's messages: "<name> must be an integer, got ..." and
# "<name> must be in [lo, hi], got ..."
NOT_INT = "{} must be an integer"
RANGE = r"{} must be in \[{}, {}\]"


def rng(name, lo, hi=None):
    """A regex for "<name> must be in [lo, hi]", or "[lo, ∞)" when hi is None."""
    if hi is None:
        return rf"{name} must be in \[{lo}, ∞\)"
    return RANGE.format(name, lo, hi)


# ---------------------------------------------------------------------------------------------
# vmstat formulas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", NON_INTEGERS)
def test_fls_rejects_non_integers(value):
    """fls raises TypeError naming x for a non-integer."""
    with pytest.raises(TypeError, match=NOT_INT.format("x")):
        fls(value)


def test_fls_rejects_negative():
    """fls raises ValueError naming x and its range [0, ∞) for a negative value."""
    with pytest.raises(ValueError, match=rng("x", 0)):
        fls(-1)


@pytest.mark.parametrize(
    "present, cpus, pattern",
    [
        (0, 4, rng("present_pages", 1, 1 << 40)),
        (-1, 4, rng("present_pages", 1, 1 << 40)),
        ((1 << 40) + 1, 4, rng("present_pages", 1, 1 << 40)),
        (1024, 0, rng("num_online_cpus", 1, 4096)),
        (1024, -4, rng("num_online_cpus", 1, 4096)),
        (1024, 4097, rng("num_online_cpus", 1, 4096)),
    ],
)
def test_calculate_threshold_rejects_out_of_range(present, cpus, pattern):
    """calculate_threshold rejects zero/negative sizes and CPU counts outside [1, 4096], naming the
    range."""
    with pytest.raises(ValueError, match=pattern):
        calculate_threshold(present, cpus)


@pytest.mark.parametrize("value", NON_INTEGERS)
def test_calculate_threshold_rejects_non_integers(value):
    """calculate_threshold raises TypeError naming the parameter that is not an integer."""
    with pytest.raises(TypeError, match=NOT_INT.format("present_pages")):
        calculate_threshold(value, 4)
    with pytest.raises(TypeError, match=NOT_INT.format("num_online_cpus")):
        calculate_threshold(262144, value)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((-1, 10, 20, 30, 4), rng("min_wmark", 0, 1 << 40)),
        ((10, 5, 20, 30, 4), rng("low_wmark", 10, 1 << 40)),  # low below min
        ((10, 15, 12, 30, 4), rng("high_wmark", 15, 1 << 40)),  # high below low
        ((10, 15, 20, -1, 4), rng("threshold", 0, 125)),
        ((10, 15, 20, 126, 4), rng("threshold", 0, 125)),
        ((10, 15, 20, 30, 0), rng("num_online_cpus", 1, 4096)),
        ((10, 15, 20, 30, 4097), rng("num_online_cpus", 1, 4096)),
    ],
)
def test_drift_mark_rejects_out_of_range(args, pattern):
    """drift_mark rejects negative or misordered watermarks, thresholds outside [0, 125] and bad CPU
    counts."""
    with pytest.raises(ValueError, match=pattern):
        drift_mark(*args)


@pytest.mark.parametrize("value", NON_INTEGERS)
@pytest.mark.parametrize(
    "position, name",
    [
        (0, "min_wmark"),
        (1, "low_wmark"),
        (2, "high_wmark"),
        (3, "threshold"),
        (4, "num_online_cpus"),
    ],
)
def test_drift_mark_rejects_non_integers(value, position, name):
    """drift_mark raises TypeError naming whichever argument is not an integer."""
    args = [1441, 1801, 2161, 98, 64]
    args[position] = value
    with pytest.raises(TypeError, match=NOT_INT.format(name)):
        drift_mark(*args)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((-1, 10, 4), rng("min_wmark", 0, 1 << 40)),
        ((10, 9, 4), rng("low_wmark", 10, 1 << 40)),
        ((10, 20, 0), rng("num_online_cpus", 1, 4096)),
        ((10, 20, 4097), rng("num_online_cpus", 1, 4096)),
    ],
)
def test_calculate_pressure_threshold_rejects_out_of_range(args, pattern):
    """calculate_pressure_threshold rejects negative/misordered watermarks and CPU counts outside
    [1, 4096]."""
    with pytest.raises(ValueError, match=pattern):
        calculate_pressure_threshold(*args)


@pytest.mark.parametrize("value", NON_INTEGERS)
def test_calculate_pressure_threshold_rejects_non_integers(value):
    """calculate_pressure_threshold raises TypeError naming the argument that is not an integer."""
    with pytest.raises(TypeError, match=NOT_INT.format("min_wmark")):
        calculate_pressure_threshold(value, 1801, 64)
    with pytest.raises(TypeError, match=NOT_INT.format("low_wmark")):
        calculate_pressure_threshold(1441, value, 64)
    with pytest.raises(TypeError, match=NOT_INT.format("num_online_cpus")):
        calculate_pressure_threshold(1441, 1801, value)


# ---------------------------------------------------------------------------------------------
# page_alloc formulas
# ---------------------------------------------------------------------------------------------


def _bad_inputs(name, out_of_range, lo, hi=None):
    """(value, exception, pattern) cases: each out-of-range value, then each non-integer."""
    cases = [(v, ValueError, rng(name, lo, hi)) for v in out_of_range]
    return cases + [(v, TypeError, NOT_INT.format(name)) for v in NON_INTEGERS]


@pytest.mark.parametrize("value, exc, pattern", _bad_inputs("x", [-1, -100], 0))
def test_int_sqrt_rejects_bad_input(value, exc, pattern):
    """int_sqrt names x and its range [0, ∞) for negatives and raises TypeError for non-integers."""
    with pytest.raises(exc, match=pattern):
        int_sqrt(value)


@pytest.mark.parametrize("value, exc, pattern", _bad_inputs("n", [0, -8], 1))
def test_rounddown_pow_of_two_rejects_bad_input(value, exc, pattern):
    """rounddown_pow_of_two names n and its range [1, ∞) and raises TypeError for non-integers."""
    with pytest.raises(exc, match=pattern):
        rounddown_pow_of_two(value)


@pytest.mark.parametrize(
    "value, exc, pattern", _bad_inputs("lowmem_kbytes", [0, -1024, (1 << 42) + 1], 1, 1 << 42)
)
def test_min_free_kbytes_rejects_bad_input(value, exc, pattern):
    """min_free_kbytes names lowmem_kbytes and its range [1, 2^42] and raises TypeError for
    non-integers."""
    with pytest.raises(exc, match=pattern):
        min_free_kbytes(value)


@pytest.mark.parametrize(
    "value, exc, pattern", _bad_inputs("present_pages", [0, -1, (1 << 40) + 1], 1, 1 << 40)
)
def test_zone_batchsize_rejects_bad_input(value, exc, pattern):
    """zone_batchsize names present_pages and its range [1, 2^40] and raises TypeError for
    non-integers."""
    with pytest.raises(exc, match=pattern):
        zone_batchsize(value)


@pytest.mark.parametrize(
    "value, exc, pattern", _bad_inputs("batch", [-1, (1 << 20) + 1], 0, 1 << 20)
)
def test_setup_pageset_rejects_bad_input(value, exc, pattern):
    """setup_pageset names batch and its range [0, 2^20] and raises TypeError for non-integers."""
    with pytest.raises(exc, match=pattern):
        setup_pageset(value)


@pytest.mark.parametrize(
    "mfk, sizes, exc, pattern",
    [
        (-1, [262144], ValueError, rng("min_free_kbytes", 0, 1 << 42)),
        (1.5, [262144], TypeError, NOT_INT.format("min_free_kbytes")),
        (None, [262144], TypeError, NOT_INT.format("min_free_kbytes")),
        (4096, [], ValueError, "present_pages must name at least one zone"),
        (4096, [4096, 0], ValueError, rng(r"present_pages\[1\]", 1, 1 << 40)),
        (4096, [-5], ValueError, rng(r"present_pages\[0\]", 1, 1 << 40)),
        (4096, [4096.0], TypeError, NOT_INT.format(r"present_pages\[0\]")),
        (4096, [True], TypeError, NOT_INT.format(r"present_pages\[0\]")),
        (4096, 262144, TypeError, "present_pages must be a sequence"),
        (4096, "4096", TypeError, "present_pages must be a sequence"),
        (4096, None, TypeError, "present_pages must be a sequence"),
    ],
)
def test_setup_per_zone_wmarks_rejects_bad_input(mfk, sizes, exc, pattern):
    """setup_per_zone_wmarks names min_free_kbytes or the offending present_pages entry and its
    range."""
    with pytest.raises(exc, match=pattern):
        setup_per_zone_wmarks(mfk, sizes)


@pytest.mark.parametrize(
    "sizes, ratios, exc, pattern",
    [
        ([], (256, 256, 32), ValueError, "present_pages must name at least one zone"),
        ([4096, 0], (256, 256, 32), ValueError, rng(r"present_pages\[1\]", 1, 1 << 40)),
        ([4096, 1.0], (256, 256, 32), TypeError, NOT_INT.format(r"present_pages\[1\]")),
        (None, (256, 256, 32), TypeError, "present_pages must be a sequence"),
        ([4096, 8192, 16384], (256,), ValueError, "ratios needs at least 2 entries"),
        ([4096, 8192], (256.0,), TypeError, NOT_INT.format(r"ratios\[0\]")),
        ([4096, 8192], ("a",), TypeError, NOT_INT.format(r"ratios\[0\]")),
        ([4096, 8192], (None,), TypeError, NOT_INT.format(r"ratios\[0\]")),
        ([4096, 8192], 256, TypeError, "ratios must be a sequence"),
        ([4096, 8192], "256", TypeError, "ratios must be a sequence"),
    ],
)
def test_setup_per_zone_lowmem_reserve_rejects_bad_input(sizes, ratios, exc, pattern):
    """setup_per_zone_lowmem_reserve names the offending present_pages or ratios entry."""
    with pytest.raises(exc, match=pattern):
        setup_per_zone_lowmem_reserve(sizes, ratios)


@pytest.mark.parametrize(
    "args, kwargs, exc, pattern",
    [
        ((100, -1, 10, 0, 0), {}, ValueError, rng("order", 0, 10)),
        ((100, 11, 10, 0, 0), {}, ValueError, rng("order", 0, 10)),
        ((100, 0, -1, 0, 0), {}, ValueError, rng("mark", 0)),
        ((100, 0, 10, -1, 0), {}, ValueError, rng("lowmem_reserve", 0)),
        ((100, 0, 10, 0, -1), {}, ValueError, rng("alloc_flags", 0)),
        (
            (100, 2, 10, 0, 0),
            {"nr_free": [5]},
            ValueError,
            "nr_free must give .* every order o < 2",
        ),
        ((100.0, 0, 10, 0, 0), {}, TypeError, NOT_INT.format("free_pages")),
        (("100", 0, 10, 0, 0), {}, TypeError, NOT_INT.format("free_pages")),
        ((100, None, 10, 0, 0), {}, TypeError, NOT_INT.format("order")),
        ((100, True, 10, 0, 0), {}, TypeError, NOT_INT.format("order")),
        ((100, 0, 10.5, 0, 0), {}, TypeError, NOT_INT.format("mark")),
        ((100, 0, 10, "0", 0), {}, TypeError, NOT_INT.format("lowmem_reserve")),
        ((100, 0, 10, 0, None), {}, TypeError, NOT_INT.format("alloc_flags")),
    ],
)
def test___zone_watermark_ok_rejects_bad_input(args, kwargs, exc, pattern):
    """__zone_watermark_ok names the bad argument: order outside [0, 10], negative
    mark/reserve/flags, short nr_free, non-integers."""
    with pytest.raises(exc, match=pattern):
        zone_watermark_ok_arith(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Zone and CountingZone constructors
# ---------------------------------------------------------------------------------------------

ZONE_CLASSES = [pytest.param(Zone, id="Zone"), pytest.param(CountingZone, id="CountingZone")]


@pytest.mark.parametrize("cls, max_pages", [(Zone, 1 << 26), (CountingZone, 1 << 40)])
@pytest.mark.parametrize("present", [0, -1, "too big"])
def test_zone_rejects_bad_present_pages(cls, max_pages, present):
    """Zone/CountingZone reject zero, negative and too-large sizes, naming present_pages and its
    range."""
    if present == "too big":
        present = max_pages + 1
    with pytest.raises(ValueError, match=rng("present_pages", 1, max_pages)):
        cls(present, 4)


@pytest.mark.parametrize("cls", ZONE_CLASSES)
@pytest.mark.parametrize("cpus", [0, -1, 4097, 100000])
def test_zone_rejects_cpu_counts_outside_1_to_4096(cls, cpus):
    """Zone/CountingZone reject zero CPUs and more than 4096, naming num_online_cpus and
    [1, 4096]."""
    with pytest.raises(ValueError, match=rng("num_online_cpus", 1, 4096)):
        cls(262144, cpus)


@pytest.mark.parametrize("cls", ZONE_CLASSES)
@pytest.mark.parametrize("value", NON_INTEGERS)
@pytest.mark.parametrize("param", ["present_pages", "num_online_cpus"])
def test_zone_rejects_non_integer_sizes(cls, param, value):
    """Zone/CountingZone raise TypeError naming present_pages or num_online_cpus for
    non-integers."""
    args = {"present_pages": 262144, "num_online_cpus": 4}
    args[param] = value
    with pytest.raises(TypeError, match=NOT_INT.format(param)):
        cls(args["present_pages"], args["num_online_cpus"])


@pytest.mark.parametrize("cls", ZONE_CLASSES)
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"pcp_batch": 0}, rng("pcp_batch", 1, 1 << 20)),
        ({"pcp_batch": -3}, rng("pcp_batch", 1, 1 << 20)),
        ({"pcp_batch": (1 << 20) + 1}, rng("pcp_batch", 1, 1 << 20)),
        ({"pcp_high": -1}, rng("pcp_high", 0, 1 << 30)),
        ({"stat_threshold": -1}, rng("stat_threshold", 0, 125)),
        ({"stat_threshold": 126}, rng("stat_threshold", 0, 125)),
        ({"free_pages": -1}, rng("free_pages", 0, 262144)),
        ({"free_pages": 262145}, rng("free_pages", 0, 262144)),
        ({"min_free_kbytes": -1}, rng("min_free_kbytes", 0, 1 << 42)),
        ({"watermark": (10, 20)}, r"watermark must be \(min, low, high\)"),
        ({"watermark": (-1, 20, 30)}, rng(r"watermark\[WMARK_MIN\]", 0, 262144)),
        ({"watermark": (10, 5, 30)}, rng(r"watermark\[WMARK_LOW\]", 10, 262144)),
        ({"watermark": (10, 20, 15)}, rng(r"watermark\[WMARK_HIGH\]", 20, 262144)),
        ({"watermark": (10, 20, 262145)}, rng(r"watermark\[WMARK_HIGH\]", 20, 262144)),
        ({"lowmem_reserve": [0, -1]}, rng(r"lowmem_reserve\[1\]", 0)),
        ({"name": "HighMem"}, "name must be one of DMA, DMA32, Normal, Movable"),
        ({"name": "normal"}, "name must be one of DMA, DMA32, Normal, Movable"),
        ({"name": None}, "name must be one of DMA, DMA32, Normal, Movable"),
    ],
)
def test_zone_rejects_out_of_range_options(cls, kwargs, pattern):
    """Zone/CountingZone reject pcp batch < 1, negative high, bad thresholds, watermarks, reserves
    and unknown zone names."""
    with pytest.raises(ValueError, match=pattern):
        cls(262144, 4, **kwargs)


@pytest.mark.parametrize("cls", ZONE_CLASSES)
@pytest.mark.parametrize("value", [v for v in NON_INTEGERS if v is not None])  # None = default
@pytest.mark.parametrize(
    "param", ["pcp_batch", "pcp_high", "stat_threshold", "free_pages", "min_free_kbytes"]
)
def test_zone_rejects_non_integer_options(cls, param, value):
    """Zone/CountingZone raise TypeError naming an integer option given a float, string or bool."""
    with pytest.raises(TypeError, match=NOT_INT.format(param)):
        cls(262144, 4, **{param: value})


@pytest.mark.parametrize("cls", ZONE_CLASSES)
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"watermark": 1024}, "watermark must be a"),
        ({"watermark": "abc"}, "watermark must be a"),
        ({"watermark": (1.0, 2, 3)}, NOT_INT.format(r"watermark\[WMARK_MIN\]")),
        ({"lowmem_reserve": 5}, "lowmem_reserve must be a sequence"),
        ({"lowmem_reserve": [0, 1.5]}, NOT_INT.format(r"lowmem_reserve\[1\]")),
        ({"patches": "all"}, "patches must be an allocsim.Patches"),
        ({"patches": True}, "patches must be an allocsim.Patches"),
    ],
)
def test_zone_rejects_wrongly_typed_options(cls, kwargs, pattern):
    """Zone/CountingZone raise TypeError naming watermark, lowmem_reserve or patches when given the
    wrong type."""
    with pytest.raises(TypeError, match=pattern):
        cls(262144, 4, **kwargs)


# ---------------------------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", Patches.switches())
@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_patches_rejects_non_bool_switches(name, value):
    """Patches raises TypeError naming the switch and that it must be True or False."""
    with pytest.raises(TypeError, match=rf"Patches\.{name} must be True or False"):
        Patches(**{name: value})


def test_patches_rejects_unknown_switch():
    """Patches raises TypeError naming an unknown keyword."""
    with pytest.raises(TypeError, match="bogus"):
        Patches(bogus=True)


@pytest.mark.parametrize(
    "text", ["bogus", "all,bogus", "counter_after_free, bogus", "ALL", "2.6.37", "2.6.38,all"]
)
def test_patches_parse_rejects_unknown_names(text):
    """Patches.parse raises ValueError naming the unknown patch and the valid choices."""
    pattern = (
        r"patches: unknown patch name.*use 'all', 'none', a kernel \(2\.6\.35, 2\.6\.36, "
        r"2\.6\.38\) or a comma list of counter_after_free, drift_mark_snapshot, "
        r"drain_after_reclaim, pressure_threshold, watermark_ok_safe"
    )
    with pytest.raises(ValueError, match=pattern):
        Patches.parse(text)


@pytest.mark.parametrize("text", [None, 3, ["all"], b"all"])
def test_patches_parse_rejects_non_strings(text):
    """Patches.parse raises TypeError naming patches when given something that is not a string."""
    with pytest.raises(TypeError, match="patches must be a string"):
        Patches.parse(text)


@pytest.mark.parametrize(
    "func",
    ["rmqueue_bulk", "free_pcppages_bulk", "drain_pages", "buffered_rmqueue", "free_hot_cold_page"],
)
@pytest.mark.parametrize("cpu", [-1, 4, 1.0, "0"])
def test_page_alloc_operations_reject_bad_cpu(func, cpu):
    """Operations on a CPU's pcp list reject a CPU that is not online, naming cpu and its range."""
    from allocsim import page_alloc
    from allocsim.mmzone import Zone

    zone = Zone(8192, 4)
    args = {
        "rmqueue_bulk": (zone, cpu, 1),
        "free_pcppages_bulk": (zone, cpu, 1),
        "drain_pages": (zone, cpu),
        "buffered_rmqueue": (zone, cpu),
        "free_hot_cold_page": (zone, cpu),
    }[func]
    with pytest.raises((ValueError, TypeError), match="cpu"):
        getattr(page_alloc, func)(*args)


@pytest.mark.parametrize("cpu", [-1, 4, 2.5])
def test_refresh_cpu_vm_stats_rejects_bad_cpu(cpu):
    """vmstat_update's fold names the bad CPU and the valid range."""
    from allocsim.mmzone import Zone
    from allocsim.vmstat import refresh_cpu_vm_stats

    with pytest.raises((ValueError, TypeError), match=r"cpu must be"):
        refresh_cpu_vm_stats(Zone(8192, 4), cpu)
