"""The sizing formulas of mm/vmstat.c and mm/page_alloc.c against hand-computed values.

Every expected literal below was worked out by hand from the kernel formula quoted in
``/work/shared/design/KERNEL.md`` §3 (not from the kernel's comment tables, which are wrong in
places); the arithmetic is written next to each literal. ``/`` is C integer division.
"""

from __future__ import annotations

import pytest

import allocsim.page_alloc as page_alloc
from allocsim.constants import ALLOC_HARDER, ALLOC_HIGH, MAX_ORDER
from allocsim.page_alloc import (
    int_sqrt,
    min_free_kbytes,
    rounddown_pow_of_two,
    setup_pageset,
    setup_per_zone_lowmem_reserve,
    setup_per_zone_wmarks,
    zone_batchsize,
)
from allocsim.vmstat import calculate_pressure_threshold, calculate_threshold, drift_mark, fls

zone_watermark_ok_arith = getattr(page_alloc, "__zone_watermark_ok")

GIB = 262144  # 1 GiB in 4 KiB pages = 2^30 / 2^12
NONE = 0
BOTH = ALLOC_HIGH | ALLOC_HARDER


# ---------------------------------------------------------------------------------------------
# fls, int_sqrt, rounddown_pow_of_two
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, expected",
    [
        (0, 0),  # no bit set -> 0 by definition
        (1, 1),  # 0b1: bit 0 -> index 1
        (2, 2),  # 0b10
        (3, 2),  # 0b11: highest bit is bit 1
        (4, 3),  # 0b100
        (7, 3),  # 0b111
        (8, 4),  # 0b1000
        (64, 7),  # 2^6 -> 7
        (1024, 11),  # 2^10 -> 11
        (4096, 13),  # 2^12 -> 13
        (2**31, 32),  # 2^31 -> 32
        (2**40, 41),  # 2^40 -> 41
    ],
)
def test_fls_returns_one_based_highest_set_bit(x, expected):
    """fls(x) is the 1-based index of the highest set bit and fls(0) is 0."""
    assert fls(x) == expected


@pytest.mark.parametrize(
    "x, expected",
    [
        (0, 0),  # sqrt(0) = 0
        (1, 1),  # sqrt(1) = 1
        (3, 1),  # 1^2 = 1 <= 3 < 4 = 2^2
        (4, 2),  # 2^2 = 4
        (15, 3),  # 3^2 = 9 <= 15 < 16
        (16, 4),  # 4^2 = 16
        (16383, 127),  # 127^2 = 16129 <= 16383 < 16384 = 128^2
        (2**46, 2**23),  # (2^23)^2 = 2^46
        (2**46 - 1, 2**23 - 1),  # one below a perfect square floors down
    ],
)
def test_int_sqrt_returns_floor_of_square_root(x, expected):
    """int_sqrt(x) is the floor of the square root of x."""
    assert int_sqrt(x) == expected


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, 1),  # 2^0
        (2, 2),  # 2^1
        (3, 2),  # 2 <= 3 < 4
        (46, 32),  # 32 <= 46 < 64
        (48, 32),  # 32 <= 48 < 64
        (64, 64),  # exact power
    ],
)
def test_rounddown_pow_of_two_returns_largest_power_not_above(n, expected):
    """rounddown_pow_of_two(n) is the largest power of two that is at most n."""
    assert rounddown_pow_of_two(n) == expected


# ---------------------------------------------------------------------------------------------
# calculate_threshold: min(125, 2 * fls(cpus) * (1 + fls(present >> 15)))
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "present, cpus, expected",
    [
        # 1 GiB zone: mem = 262144 >> 15 = 8, fls(8) = 4, 1 + 4 = 5
        (GIB, 1, 10),  # 2 * fls(1)=1 * 5 = 10
        (GIB, 4, 30),  # 2 * fls(4)=3 * 5 = 30
        (GIB, 64, 70),  # 2 * fls(64)=7 * 5 = 70
        (GIB, 256, 90),  # 2 * fls(256)=9 * 5 = 90
        (GIB, 1024, 110),  # 2 * fls(1024)=11 * 5 = 110
        (GIB, 2048, 120),  # 2 * fls(2048)=12 * 5 = 120
        (GIB, 4096, 125),  # 2 * fls(4096)=13 * 5 = 130 -> capped at 125
        # non-power-of-two CPU counts use the highest bit
        (GIB, 3, 20),  # 2 * fls(3)=2 * 5 = 20
        (GIB, 63, 60),  # 2 * fls(63)=6 * 5 = 60
        (GIB, 65, 70),  # 2 * fls(65)=7 * 5 = 70
        # just below 1 GiB: mem = 262143 >> 15 = 7, fls(7) = 3, 1 + 3 = 4
        (GIB - 1, 4, 24),  # 2 * 3 * 4 = 24
        # 128 MiB boundary: 32767 >> 15 = 0 (fls 0), 32768 >> 15 = 1 (fls 1)
        (32767, 4, 6),  # 2 * 3 * (1 + 0) = 6
        (32768, 4, 12),  # 2 * 3 * (1 + 1) = 12
        # 256 MiB boundary: 65535 >> 15 = 1 (fls 1), 65536 >> 15 = 2 (fls 2)
        (65535, 4, 12),  # 2 * 3 * (1 + 1) = 12
        (65536, 4, 18),  # 2 * 3 * (1 + 2) = 18
        # 384 MiB: 98304 >> 15 = 3, fls(3) = 2 -> same as 256 MiB
        (98304, 4, 18),  # 2 * 3 * (1 + 2) = 18
        # 512 MiB boundary: 131071 >> 15 = 3 (fls 2), 131072 >> 15 = 4 (fls 3)
        (131071, 4, 18),  # 2 * 3 * (1 + 2) = 18
        (131072, 4, 24),  # 2 * 3 * (1 + 3) = 24
        # 4 GiB at 64 CPUs (the "zone state overhead" thread): 1048576 >> 15 = 32, fls(32) = 6
        (1048576, 64, 98),  # 2 * 7 * (1 + 6) = 98
        # the 125 cap at 64 CPUs: 16 GiB - 1 page vs 16 GiB
        (4194303, 64, 112),  # 4194303 >> 15 = 127, fls 7: 2 * 7 * 8 = 112
        (4194304, 64, 125),  # 4194304 >> 15 = 128, fls 8: 2 * 7 * 9 = 126 -> 125
        # smallest zone: 1 >> 15 = 0
        (1, 1, 2),  # 2 * 1 * (1 + 0) = 2
        (1, 4096, 26),  # 2 * 13 * (1 + 0) = 26
        # largest accepted zone: 2^40 >> 15 = 2^25, fls = 26
        (2**40, 1, 54),  # 2 * 1 * (1 + 26) = 54
        (2**40, 4096, 125),  # 2 * 13 * 27 = 702 -> 125
    ],
)
def test_calculate_threshold_matches_hand_computed_formula(present, cpus, expected):
    """calculate_threshold is min(125, 2*fls(cpus)*(1+fls(present>>15))) at sizes around 128 MiB
    multiples."""
    assert calculate_threshold(present, cpus) == expected


def test_calculate_threshold_never_exceeds_125():
    """calculate_threshold is capped at 125 (the s8 diff) for every CPU count at the
    largest zone."""
    # 2^40 pages: 1 + fls(2^25) = 27; 2 * fls(cpus) * 27 >= 54 and > 125 once fls(cpus) >= 3
    values = [calculate_threshold(2**40, c) for c in (1, 2, 3, 4, 64, 4096)]
    assert values == [54, 108, 108, 125, 125, 125]  # fls = 1, 2, 2, 3(162), 7(378), 13(702)


# ---------------------------------------------------------------------------------------------
# drift_mark: tolerate = low - min, max_drift = ncpus * threshold; high + max_drift if >
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wmin, low, high, threshold, cpus, expected",
    [
        # linux-mm "zone state overhead": tolerate 1801 - 1441 = 360, max 64 * 98 = 6272 > 360
        (1441, 1801, 2161, 98, 64, 8433),  # 2161 + 6272 = 8433
        # 1 GiB at 4 CPUs: tolerate 1280 - 1024 = 256, max 4 * 30 = 120 <= 256 -> not set
        (1024, 1280, 1536, 30, 4, 0),
        # 1 GiB at 64 CPUs: tolerate 256, max 64 * 70 = 4480 > 256
        (1024, 1280, 1536, 70, 64, 6016),  # 1536 + 4480 = 6016
        # exactly at the edge: tolerate 1360 - 1000 = 360, max 4 * 90 = 360, 360 > 360 is false
        (1000, 1360, 1720, 90, 4, 0),
        # one more drift: max 4 * 91 = 364 > 360
        (1000, 1360, 1720, 91, 4, 2084),  # 1720 + 364 = 2084
        # one less tolerance: tolerate 1359 - 1000 = 359, max 360 > 359
        (1000, 1359, 1720, 90, 4, 2080),  # 1720 + 360 = 2080
        # threshold 0 with min == low: 0 > 0 false
        (5, 5, 5, 0, 4096, 0),
        # threshold 0 but a gap: max 0 <= tolerate 10
        (0, 10, 20, 0, 1, 0),
        # 4096 CPUs at the cap: max 4096 * 125 = 512000 > 256
        (1024, 1280, 1536, 125, 4096, 513536),  # 1536 + 512000 = 513536
    ],
)
def test_drift_mark_matches_hand_computed_formula(wmin, low, high, threshold, cpus, expected):
    """drift_mark is high + ncpus*threshold when that drift exceeds low - min, and 0 (not set)
    otherwise."""
    assert drift_mark(wmin, low, high, threshold, cpus) == expected


# ---------------------------------------------------------------------------------------------
# calculate_pressure_threshold: min(125, max(1, (low - min) / ncpus))
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wmin, low, cpus, expected",
    [
        (1441, 1801, 64, 5),  # 360 / 64 = 5 (5.625 truncated)
        (1024, 1280, 4, 64),  # 256 / 4 = 64
        (1024, 1280, 256, 1),  # 256 / 256 = 1
        (1024, 1280, 257, 1),  # 256 / 257 = 0 -> raised to 1
        (1024, 1280, 4096, 1),  # 256 / 4096 = 0 -> raised to 1
        (7, 7, 1, 1),  # 0 / 1 = 0 -> raised to 1
        (0, 124, 1, 124),  # 124 / 1 = 124, under the cap
        (0, 125, 1, 125),  # 125 / 1 = 125, at the cap
        (0, 126, 1, 125),  # 126 -> capped at 125
        (0, 100000, 1, 125),  # 100000 -> capped at 125
    ],
)
def test_calculate_pressure_threshold_matches_hand_computed_formula(wmin, low, cpus, expected):
    """calculate_pressure_threshold is (low - min) / ncpus clamped to [1, 125]."""
    assert calculate_pressure_threshold(wmin, low, cpus) == expected


# ---------------------------------------------------------------------------------------------
# min_free_kbytes: clamp(int_sqrt(lowmem_kbytes * 16), 128, 65536)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lowmem_kbytes, expected",
    [
        (1048576, 4096),  # 1 GiB: 16 * 1048576 = 16777216 = 4096^2
        (16384, 512),  # 16 MiB: 16 * 16384 = 262144 = 512^2
        # 128 MiB: 16 * 131072 = 2097152; 1448^2 = 2096704 <= 2097152 < 1449^2 = 2099601
        (131072, 1448),
        (2097152, 5792),  # 2 GiB: 33554432; 5792^2 = 33547264 <= it < 5793^2 = 33558849
        (4194304, 8192),  # 4 GiB: 67108864 = 8192^2
        (16777216, 16384),  # 16 GiB: 268435456 = 16384^2
        # lower clamp at 128
        (1, 128),  # int_sqrt(16) = 4 -> 128
        (1023, 128),  # int_sqrt(16368) = 127 (127^2 = 16129) -> 128
        (1024, 128),  # int_sqrt(16384) = 128 exactly
        # int_sqrt(16912) = 130 (130^2 = 16900 <= 16912 < 17161 = 131^2), unclamped
        (1057, 130),
        # upper clamp at 65536 (= int_sqrt(16 * 268435456), 256 GiB)
        (268435455, 65535),  # int_sqrt(4294967280) = 65535 (65535^2 = 4294836225), unclamped
        (268435456, 65536),  # int_sqrt(4294967296) = 65536 exactly
        (268435457, 65536),  # int_sqrt(4294967312) = 65536 (65537^2 is larger)
        (4 * 268435456, 65536),  # 1 TiB: int_sqrt(2^36) = 2^18 = 262144 -> 65536
        (2**42, 65536),  # largest accepted: int_sqrt(2^46) = 2^23 -> 65536
    ],
)
def test_min_free_kbytes_matches_hand_computed_formula(lowmem_kbytes, expected):
    """min_free_kbytes is int_sqrt(16 * lowmem_kbytes) clamped to [128, 65536]."""
    assert min_free_kbytes(lowmem_kbytes) == expected


# ---------------------------------------------------------------------------------------------
# setup_per_zone_wmarks: pages_min = mfk >> 2; tmp = pages_min * present / lowmem;
# (min, low, high) = (tmp, tmp + tmp/4, tmp + tmp/2)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mfk, sizes, expected",
    [
        # 1 GiB single zone: pages_min = 4096 >> 2 = 1024; tmp = 1024 * 262144 / 262144 = 1024
        (4096, [GIB], [(1024, 1280, 1536)]),  # 1024 + 256, 1024 + 512
        # pages_min = 5764 >> 2 = 1441: 1441 + 1441/4 = 1441 + 360, 1441 + 1441/2 = 1441 + 720
        (5764, [1048576], [(1441, 1801, 2161)]),
        (5767, [1048576], [(1441, 1801, 2161)]),  # 5767 >> 2 = 1441 as well
        # 0 .. 8 KiB: tiny pages_min truncates the quarter and half to 0
        (0, [GIB], [(0, 0, 0)]),  # pages_min 0
        (3, [GIB], [(0, 0, 0)]),  # 3 >> 2 = 0
        (4, [GIB], [(1, 1, 1)]),  # 4 >> 2 = 1: 1 + 0, 1 + 0
        (8, [GIB], [(2, 2, 3)]),  # 8 >> 2 = 2: 2 + 0, 2 + 1
        # cap value 65536: pages_min 16384: 16384 + 4096, 16384 + 8192
        (65536, [4194304], [(16384, 20480, 24576)]),
        # DMA 4096 / DMA32 1044480 / Normal 3145728 (16 GiB, lowmem = 4194304 pages),
        # min_free_kbytes(16 GiB) = 16384, pages_min = 4096
        (
            16384,
            [4096, 1044480, 3145728],
            [
                (4, 5, 6),  # 4096 * 4096 / 4194304 = 4: 4 + 1, 4 + 2
                (1020, 1275, 1530),  # 4096 * 1044480 / 4194304 = 1020: 1020 + 255, 1020 + 510
                (3072, 3840, 4608),  # 4096 * 3145728 / 4194304 = 3072: 3072 + 768, 3072 + 1536
            ],
        ),
        # uneven shares truncate: pages_min = 8000 >> 2 = 2000,
        # lowmem = 4096 + 1000000 + 2000000 = 3004096
        (
            8000,
            [4096, 1000000, 2000000],
            [
                (2, 2, 3),  # 2000 * 4096 = 8192000 / 3004096 = 2: 2 + 0, 2 + 1
                # 2000 * 1000000 = 2e9; 2e9 / 3004096 = 665
                # (665 * 3004096 = 1997723840, remainder 2276160)
                (665, 831, 997),  # 665 + 665/4 = 665 + 166, 665 + 665/2 = 665 + 332
                # 2000 * 2000000 = 4e9; 4e9 / 3004096 = 1331
                # (1331 * 3004096 = 3998451776, rem. 1548224)
                (1331, 1663, 1996),  # 1331 + 1331/4 = 1331 + 332, 1331 + 1331/2 = 1331 + 665
            ],
        ),
    ],
)
def test_setup_per_zone_wmarks_matches_hand_computed_formula(mfk, sizes, expected):
    """setup_per_zone_wmarks gives each zone its share tmp of pages_min and (tmp, tmp+tmp/4,
    tmp+tmp/2)."""
    assert setup_per_zone_wmarks(mfk, sizes) == expected


def test_setup_per_zone_wmarks_default_for_1gib_zone_chains_with_min_free_kbytes():
    """A 1 GiB zone's default min_free_kbytes (4096) gives watermarks 1024/1280/1536."""
    mfk = min_free_kbytes(GIB * 4)  # 262144 pages * 4 KiB = 1048576 KiB -> 4096
    assert mfk == 4096
    assert setup_per_zone_wmarks(mfk, [GIB]) == [(1024, 1280, 1536)]


# ---------------------------------------------------------------------------------------------
# setup_per_zone_lowmem_reserve: zone i, upper j: (sum present i+1..j) / ratio[i]
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, ratios, expected",
    [
        ([GIB], (256, 256, 32), [[0]]),  # one zone: nothing above it
        # DMA 4096 / DMA32 1044480 / Normal 3145728 with x86_64 ratios 256/256/32
        (
            [4096, 1044480, 3145728],
            (256, 256, 32),
            [
                # DMA: 1044480 / 256 = 4080; (1044480 + 3145728) / 256 = 4190208 / 256 = 16368
                [0, 4080, 16368],
                [0, 0, 12288],  # DMA32: 3145728 / 256 = 12288
                [0, 0, 0],  # Normal: no zone above
            ],
        ),
        (
            [4000, 100000],
            (256, 256, 32),
            [[0, 390], [0, 0]],
        ),  # 100000 / 256 = 390 (390.6 truncated)
        ([10, 20], (0, 256, 32), [[0, 20], [0, 0]]),  # ratio 0 forced to 1: 20 / 1 = 20
        (
            [10, 20, 30],
            (2, 3),
            [[0, 10, 25], [0, 0, 10], [0, 0, 0]],
        ),  # 20/2=10, (30+20)/2=25, 30/3=10
    ],
)
def test_setup_per_zone_lowmem_reserve_matches_hand_computed_formula(sizes, ratios, expected):
    """setup_per_zone_lowmem_reserve gives zone i (sum of zones i+1..j) / ratio[i] against
    zone j."""
    assert setup_per_zone_lowmem_reserve(sizes, ratios) == expected


def test_setup_per_zone_lowmem_reserve_defaults_to_x86_64_ratios():
    """setup_per_zone_lowmem_reserve uses the x86_64 ratios 256/256/32 by default."""
    # DMA32 reserve against Normal: 3145728 / 256 = 12288
    assert setup_per_zone_lowmem_reserve([4096, 1044480, 3145728])[1][2] == 12288


# ---------------------------------------------------------------------------------------------
# zone_batchsize: b = present/1024, capped at 128; b /= 4, at least 1;
# rounddown_pow_of_two(b + b/2) - 1.  setup_pageset: (6 * batch, max(1, batch))
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "present, expected",
    [
        (1, 0),  # 1/1024 = 0; 0/4 = 0 -> 1; rdp2(1 + 0) = 1; 1 - 1 = 0
        (4096, 0),  # 4; 4/4 = 1; rdp2(1 + 0) = 1; 0
        (8191, 0),  # 7; 7/4 = 1; rdp2(1) = 1; 0   (just below 32 MiB)
        (8192, 1),  # 8; 8/4 = 2; rdp2(2 + 1 = 3) = 2; 1   (32 MiB)
        (12288, 3),  # 12; 3; rdp2(3 + 1 = 4) = 4; 3
        (16384, 3),  # 16; 4; rdp2(4 + 2 = 6) = 4; 3
        (32768, 7),  # 32; 8; rdp2(8 + 4 = 12) = 8; 7
        (65536, 15),  # 64; 16; rdp2(16 + 8 = 24) = 16; 15
        (90111, 15),  # 87; 21; rdp2(21 + 10 = 31) = 16; 15
        (90112, 31),  # 88; 22; rdp2(22 + 11 = 33) = 32; 31
        (131071, 31),  # 127; 31; rdp2(31 + 15 = 46) = 32; 31
        (131072, 31),  # 128 (128 * 4 KiB = 512 KiB, not over the cap); 32; rdp2(48) = 32; 31
        (GIB, 31),  # 256 * 4 KiB > 512 KiB -> 128; 32; rdp2(48) = 32; 31
        (1048576, 31),  # 1024 -> 128 (uncapped would be 256 -> rdp2(384) - 1 = 255); 31
        (2**40, 31),  # capped at 128 -> 31
    ],
)
def test_zone_batchsize_matches_hand_computed_formula(present, expected):
    """zone_batchsize is 0 below 32 MiB (8192 pages), 2^n - 1 above, and at most 31."""
    assert zone_batchsize(present) == expected


@pytest.mark.parametrize(
    "batch, expected",
    [
        (0, (0, 1)),  # high = 6 * 0 = 0, batch = max(1, 0) = 1
        (1, (6, 1)),  # 6 * 1, max(1, 1)
        (3, (18, 3)),  # 6 * 3
        (15, (90, 15)),  # 6 * 15
        (31, (186, 31)),  # 6 * 31
    ],
)
def test_setup_pageset_returns_six_times_batch_and_batch_at_least_one(batch, expected):
    """setup_pageset returns high = 6*batch and pcp batch = max(1, batch)."""
    assert setup_pageset(batch) == expected


@pytest.mark.parametrize(
    "present, expected",
    [
        (8191, (0, 1)),  # zone_batchsize 0 -> high 0, batch 1: every free goes straight through
        (8192, (6, 1)),  # zone_batchsize 1 -> 6 * 1, 1
        (GIB, (186, 31)),  # zone_batchsize 31 -> 6 * 31 = 186, 31
    ],
)
def test_setup_pageset_of_zone_batchsize_gives_kernel_pcp_sizes(present, expected):
    """setup_pageset(zone_batchsize(n)) gives high 0/batch 1 under 32 MiB and 186/31 for large
    zones."""
    assert setup_pageset(zone_batchsize(present)) == expected


# ---------------------------------------------------------------------------------------------
# __zone_watermark_ok(free, order, mark, reserve, flags, nr_free)
# free' = free - (1 << order) + 1; min = mark; HIGH: min -= min/2; then HARDER: min -= min/4;
# fail if free' <= min + reserve; per order o < order: free' -= nr_free[o] << o, min >>= 1,
# fail if free' <= min.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mark, flags, effective",
    [
        (1024, NONE, 1024),
        (1024, ALLOC_HIGH, 512),  # 1024 - 1024/2 = 512
        (1024, ALLOC_HARDER, 768),  # 1024 - 1024/4 = 768
        (1024, BOTH, 384),  # 512 - 512/4 = 384
        (1000, ALLOC_HIGH, 500),  # 1000 - 500
        (1000, ALLOC_HARDER, 750),  # 1000 - 250
        (1000, BOTH, 375),  # 500 - 125
        (1023, ALLOC_HIGH, 512),  # 1023 - 511 = 512
        (1023, ALLOC_HARDER, 768),  # 1023 - 255 = 768
        (1023, BOTH, 384),  # 512 - 128 = 384
        (7, ALLOC_HIGH, 4),  # 7 - 3 = 4
        (7, ALLOC_HARDER, 6),  # 7 - 1 = 6
        (7, BOTH, 3),  # 4 - 1 = 3
        (0, BOTH, 0),  # 0 - 0 - 0
    ],
)
def test___zone_watermark_ok_flag_reductions_are_strict_at_effective_min(mark, flags, effective):
    """At order 0 the check passes with effective_min + 1 free pages and fails (strict <=) at
    effective_min."""
    # order 0: free' = free - 1 + 1 = free
    assert zone_watermark_ok_arith(effective + 1, 0, mark, 0, flags) is True
    assert zone_watermark_ok_arith(effective, 0, mark, 0, flags) is False


@pytest.mark.parametrize(
    "free, reserve, flags, expected",
    [
        (1124, 100, NONE, False),  # 1124 <= 1024 + 100
        (1125, 100, NONE, True),  # 1125 > 1124
        (612, 100, ALLOC_HIGH, False),  # 612 <= 512 + 100
        (613, 100, ALLOC_HIGH, True),  # 613 > 612
        (484, 100, BOTH, False),  # 484 <= 384 + 100
        (485, 100, BOTH, True),  # 485 > 484
        (4096, 4080, NONE, False),  # 4096 <= 1024 + 4080 = 5104
        (5105, 4080, NONE, True),  # 5105 > 5104
    ],
)
def test___zone_watermark_ok_adds_lowmem_reserve_to_min(free, reserve, flags, expected):
    """The lowmem_reserve of the classzone is added to the (reduced) min before the strict
    comparison."""
    assert zone_watermark_ok_arith(free, 0, 1024, reserve, flags) is expected


@pytest.mark.parametrize(
    "free, order, mark, reserve, nr_free, expected",
    [
        # free' = 20 - 4 + 1 = 17 > 8; o0: 17 - 2 = 15 > 8>>1 = 4; o1: 15 - 3*2 = 9 > 2 -> pass
        (20, 2, 8, 0, [2, 3, 3], True),
        # free' = 40 - 3 = 37 > 16; o0: 37 - 20 = 17 > 8; o1: 17 - 8*2 = 1 <= 4 -> fail in loop
        (40, 2, 16, 0, [20, 8, 1], False),
        # o0: 37 - 21 = 16 > 8; o1: 16 - 6*2 = 4 <= 4 -> fail (strict) in loop
        (40, 2, 16, 0, [21, 6], False),
        # o0: 37 - 20 = 17 > 8; o1: 17 - 12 = 5 > 4 -> pass
        (40, 2, 16, 0, [20, 6], True),
        # reserve only in the first test: free' = 40 - 2 + 1 = 39 > 16 + 10;
        # o0: 39 - 30 = 9 > 8 -> pass
        (40, 1, 16, 10, [30], True),
        # the first test already fails: free' = 26 - 1 = 25 <= 16 + 10 = 26
        (26, 1, 16, 10, [0], False),
        # free' = 10 - 8 + 1 = 3 > 2; o0: 3 - 0 > 1; o1: 3 - 0 > 0; o2: 3 - 1*4 = -1 <= 0 -> fail
        (10, 3, 2, 0, [0, 0, 1], False),
        # order 3 with nothing free: free' = 0 - 7 = -7 <= 0
        (0, 3, 0, 0, [0, 0, 0], False),
        # the largest order: free' = 2048 - 1024 + 1 = 1025 > 0, min stays 0,
        # every order has 0 blocks
        (2048, MAX_ORDER - 1, 0, 0, [0] * (MAX_ORDER - 1) + [2], True),
    ],
)
def test___zone_watermark_ok_per_order_loop_discounts_lower_orders(
    free, order, mark, reserve, nr_free, expected
):
    """For order > 0 each lower order's pages are discounted and min halved, without the reserve."""
    assert zone_watermark_ok_arith(free, order, mark, reserve, NONE, nr_free) is expected


def test___zone_watermark_ok_order0_edge_with_zero_mark():
    """With mark 0 an order-0 check needs at least one free page (0 <= 0 fails, 1 > 0 passes)."""
    assert zone_watermark_ok_arith(0, 0, 0, 0, NONE) is False  # free' = 0 - 1 + 1 = 0 <= 0
    assert zone_watermark_ok_arith(1, 0, 0, 0, NONE) is True  # free' = 1 > 0


# ---------------------------------------------------------------------------------------------
# The known worked examples chained end to end.
# ---------------------------------------------------------------------------------------------


def test_calculate_threshold_and_drift_mark_reproduce_zone_state_overhead_numbers():
    """The 64-CPU example gives threshold 98, drift mark 8433 and pressure threshold 5."""
    threshold = calculate_threshold(1048576, 64)  # 2 * 7 * (1 + fls(32) = 7) = 98
    assert threshold == 98
    assert drift_mark(1441, 1801, 2161, threshold, 64) == 8433  # 2161 + 64 * 98
    assert calculate_pressure_threshold(1441, 1801, 64) == 5  # 360 / 64 = 5


def test_zone_watermark_ok_reads_classzone_reserve_and_free_area():
    """zone_watermark_ok applies lowmem_reserve[classzone_idx] and the zone's own nr_free
    per order."""
    from allocsim.mmzone import Zone

    zone = Zone(GIB, 4, lowmem_reserve=[0, 0, 100, 0])
    ok = page_alloc.zone_watermark_ok
    assert ok(zone, 0, 1024, 2, NONE, free_pages=1124) is False  # 1124 <= 1024 + 100
    assert ok(zone, 0, 1024, 2, NONE, free_pages=1125) is True  # 1125 > 1124
    assert ok(zone, 0, 1024, 0, NONE, free_pages=1025) is True  # classzone 0: reserve 0
    # a fresh 1 GiB zone holds 256 blocks of order 10 only, so order 10 passes on them:
    # free' = 262144 - 1024 + 1 = 261121 > 1024; orders 0..9 hold no blocks; min halves to 1
    assert ok(zone, MAX_ORDER - 1, 1024, 0, NONE) is True
