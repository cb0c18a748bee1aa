"""Kernel constants of the 2.6.36 era (x86_64, 4 KiB pages, HZ = 1000).

Names and values mirror ``include/linux/mmzone.h``, ``include/linux/gfp.h``,
``include/linux/swap.h`` and ``mm/internal.h`` / ``mm/page_alloc.c``.
"""

from __future__ import annotations

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MAX_ORDER = 11  # free_area[0..MAX_ORDER-1]; the largest block is 2^10 pages = 4 MiB
SWAP_CLUSTER_MAX = 32  # reclaim works in chunks of this many pages
DEF_PRIORITY = 12
HZ = 1000  # one jiffy = 1 ms of simulated time

# The most CPUs the kit accepts; NR_CPUS on the largest 2010 configs (x86_64 MAXSMP) was 4096.
NR_CPUS = 4096

# Watermark indices (enum zone_watermarks).
WMARK_MIN = 0
WMARK_LOW = 1
WMARK_HIGH = 2
NR_WMARK = 3

# Zone types (enum zone_type) of an x86_64 kernel without highmem.
ZONE_DMA = 0
ZONE_DMA32 = 1
ZONE_NORMAL = 2
ZONE_MOVABLE = 3
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable")

# sysctl_lowmem_reserve_ratio for x86_64: DMA 256, DMA32 256, Normal 32.
LOWMEM_RESERVE_RATIO = (256, 256, 32)

# alloc_flags (mm/page_alloc.c, 2.6.36).
ALLOC_WMARK_MIN = WMARK_MIN
ALLOC_WMARK_LOW = WMARK_LOW
ALLOC_WMARK_HIGH = WMARK_HIGH
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_HARDER = 0x10
ALLOC_HIGH = 0x20
ALLOC_CPUSET = 0x40

# gfp bits (include/linux/gfp.h, 2.6.36), only those the model reads.
__GFP_WAIT = 0x10
__GFP_HIGH = 0x20  # deliberately equal to ALLOC_HIGH
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_COLD = 0x100
__GFP_NOMEMALLOC = 0x10000
GFP_ATOMIC = __GFP_HIGH
GFP_NOIO = __GFP_WAIT
GFP_NOFS = __GFP_WAIT | __GFP_IO
GFP_KERNEL = __GFP_WAIT | __GFP_IO | __GFP_FS

# Task flags.
PF_MEMALLOC = 0x00000800
