"""Randomised operation sequences on ``Zone`` / ``CountingZone`` with invariants after every step.

The state machines drive the order-0 per-cpu paths of ``allocsim.page_alloc``
(``buffered_rmqueue``, ``free_hot_cold_page``, ``rmqueue_bulk``, ``drain_pages``,
``drain_all_pages``), ``vmstat.refresh_cpu_vm_stats`` and the buddy allocator's order > 0 path
(``zone.rmqueue`` + ``__mod_zone_page_state``, ``zone.free_one_block``), and check after every
operation that no page is lost or duplicated, the buddy lists are well formed, the per-cpu
counts match the lists, every per-CPU diff is within its threshold and the exact counter equals
the pages on the buddy lists.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import allocsim.vmstat as vmstat
from allocsim import page_alloc
from allocsim.constants import MAX_ORDER, NR_CPUS
from allocsim.mmzone import CountingZone, Zone
from allocsim.patches import Patches

mod_zone_page_state = getattr(vmstat, "__mod_zone_page_state")

GIB = 262144  # pages in 1 GiB

# Random operations executed per test (summed over all examples); printed at module teardown
# (visible with ``pytest -s``).
OPS: Counter = Counter()

MACHINE_SETTINGS = settings(
    max_examples=12,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# A CPU index: mostly the first few CPUs (so per-cpu lists fill up), sometimes any CPU;
# reduced modulo the zone's CPU count.
CPU = st.one_of(st.integers(0, 3), st.integers(0, NR_CPUS - 1))
PICK = st.integers(0, 1 << 30)  # which allocated page/block to free, modulo how many there are


@pytest.fixture(scope="module", autouse=True)
def _report_operation_count():
    yield
    print(f"\n[test_mmzone] random operations exercised: {sum(OPS.values())} {dict(OPS)}")


def exact_counter(zone) -> int:
    """NR_FREE_PAGES exactly: the zone counter plus every CPU's unfolded diff."""
    return int(zone.vm_stat) + int(zone.vm_stat_diff.sum())


def check_counters(zone) -> None:
    """The per-cpu and vmstat invariants shared by ``Zone`` and ``CountingZone``."""
    assert (zone.pcp_count >= 0).all()
    assert (np.abs(zone.vm_stat_diff) <= zone.stat_threshold).all(), "diff beyond stat_threshold"
    assert exact_counter(zone) == zone.buddy_pages(), "exact NR_FREE_PAGES != buddy pages"


def check_page_level_zone(zone: Zone, allocated) -> None:
    """Every invariant of a page-level zone; ``allocated[pfn]`` is 1 for each page handed out."""
    n = zone.present_pages
    cover = allocated.copy()  # int8: 1 per allocated page
    nblocks = 0
    buddy = 0
    for order, area in enumerate(zone.free_area):
        assert area.nr_free == len(area.free_list), f"nr_free wrong at order {order}"
        size = 1 << order
        for pfn in area.free_list:
            assert pfn % size == 0, f"block {pfn} not aligned to order {order}"
            assert 0 <= pfn and pfn + size <= n, f"block {pfn}/{order} outside the zone"
            assert zone.page_order[pfn] == order, f"page_order[{pfn}] disagrees with order {order}"
            if order < MAX_ORDER - 1:
                buddy_pfn = pfn ^ size
                assert not (buddy_pfn < n and zone.page_order[buddy_pfn] == order), (
                    f"free buddies {pfn} and {buddy_pfn} of order {order} left unmerged"
                )
            cover[pfn : pfn + size] += 1
        nblocks += area.nr_free
        buddy += area.nr_free << order
    # page_order marks exactly the heads of free blocks
    assert int(np.count_nonzero(zone.page_order >= 0)) == nblocks
    assert zone.buddy_pages() == buddy
    for cpu, lst in enumerate(zone.pcp_lists):
        assert zone.pcp_count[cpu] == len(lst), f"pcp_count[{cpu}] != len(pcp_lists[{cpu}])"
    pcp = np.fromiter(itertools.chain.from_iterable(zone.pcp_lists), dtype=np.int64)
    assert len(np.unique(pcp)) == len(pcp), "a page is on the pcp lists twice"
    cover[pcp] += 1
    assert buddy + len(pcp) + int(allocated.sum(dtype=np.int64)) == n, "pages lost or invented"
    assert int(cover.min()) == 1 and int(cover.max()) == 1, "a page is lost or in two places"
    check_counters(zone)


class Allocated:
    """The pages the test holds: order-0 pfns (a list to pick from) and order > 0 blocks,
    mirrored in ``map`` (int8 per page, 1 = allocated) for the invariant check."""

    def __init__(self, present, first_allocated):
        self.map = np.zeros(present, dtype=np.int8)
        self.map[first_allocated:] = 1  # pages beyond free_pages start out allocated
        self.order0 = list(range(first_allocated, present))
        self.blocks = {}  # pfn -> order

    def add(self, pfn, order=0):
        size = 1 << order
        assert not self.map[pfn : pfn + size].any(), f"pages {pfn}+{size} handed out twice"
        self.map[pfn : pfn + size] = 1
        if order:
            self.blocks[pfn] = order
        else:
            self.order0.append(pfn)

    def pop_order0(self, pick):
        i = pick % len(self.order0)
        self.order0[i], self.order0[-1] = self.order0[-1], self.order0[i]
        pfn = self.order0.pop()
        self.map[pfn] = 0
        return pfn

    def pop_block(self, pick):
        pfn = sorted(self.blocks)[pick % len(self.blocks)]
        order = self.blocks.pop(pfn)
        self.map[pfn : pfn + (1 << order)] = 0
        return pfn, order


# ---------------------------------------------------------------------------------------------
# Invariants of a page-level Zone under random order-0 and order > 0 traffic
# ---------------------------------------------------------------------------------------------


class ZoneMachine(RuleBasedStateMachine):
    """Random allocator traffic on one page-level ``Zone``."""

    def __init__(self, present, cpus, patches, label, zone_kwargs=None):
        super().__init__()
        self.present = present
        self.cpus = cpus
        self.patches = patches
        self.label = label
        self.zone_kwargs = zone_kwargs or {}
        self.zone = None
        self.held = None  # the pages this test has allocated (Allocated)

    def cpu(self, c):
        return c % self.cpus

    def step(self):
        OPS[self.label] += 1

    @initialize(fill=st.sampled_from([1.0, 1.0, 0.5, 0.05, 0.0]))
    def build(self, fill):
        free_pages = int(self.present * fill)
        self.zone = Zone(
            self.present, self.cpus, patches=self.patches, free_pages=free_pages, **self.zone_kwargs
        )
        self.held = Allocated(self.present, free_pages)

    def _take(self, seq_len, pick):
        return pick % seq_len

    @rule(cpu=CPU, cold=st.booleans())
    def alloc_order0(self, cpu, cold):
        cpu = self.cpu(cpu)
        pfn = page_alloc.buffered_rmqueue(self.zone, cpu, cold)
        if pfn is None:
            assert self.zone.buddy_pages() == 0 and self.zone.pcp_count[cpu] == 0
        else:
            self.held.add(int(pfn))
        self.step()

    @rule(cpu=CPU, order=st.integers(1, MAX_ORDER - 1))
    def alloc_high_order(self, cpu, order):
        cpu = self.cpu(cpu)
        pfn = self.zone.rmqueue(order)
        if pfn is None:
            assert all(self.zone.free_area[o].nr_free == 0 for o in range(order, MAX_ORDER))
        else:
            assert pfn % (1 << order) == 0
            # buffered_rmqueue, order > 0: __mod_zone_page_state(zone, NR_FREE_PAGES, -(1 << order))
            mod_zone_page_state(self.zone, cpu, -(1 << order))
            self.held.add(int(pfn), order)
        self.step()

    @precondition(lambda self: self.held is not None and self.held.order0)
    @rule(cpu=CPU, cold=st.booleans(), pick=PICK)
    def free_order0(self, cpu, cold, pick):
        cpu = self.cpu(cpu)
        pfn = self.held.pop_order0(pick)
        before = int(self.zone.pcp_count[cpu])
        flushed = page_alloc.free_hot_cold_page(self.zone, cpu, cold, pfn=pfn)
        assert int(self.zone.pcp_count[cpu]) == before + 1 - flushed
        self.step()

    @precondition(lambda self: self.held is not None and self.held.blocks)
    @rule(cpu=CPU, pick=PICK)
    def free_high_order(self, cpu, pick):
        cpu = self.cpu(cpu)
        pfn, order = self.held.pop_block(pick)
        # free_one_page: the counter before the merge (2.6.35.3) or after it (72853e2)
        if self.patches.counter_after_free:
            self.zone.free_one_block(pfn, order)
            mod_zone_page_state(self.zone, cpu, 1 << order)
        else:
            mod_zone_page_state(self.zone, cpu, 1 << order)
            self.zone.free_one_block(pfn, order)
        self.step()

    @rule(cpu=CPU, count=st.integers(0, 200), cold=st.booleans())
    def bulk_refill(self, cpu, count, cold):
        cpu = self.cpu(cpu)
        buddy = self.zone.buddy_pages()
        got = page_alloc.rmqueue_bulk(self.zone, cpu, count, cold)
        assert got == min(count, buddy)
        self.step()

    @rule(cpu=CPU)
    def drain(self, cpu):
        cpu = self.cpu(cpu)
        held = int(self.zone.pcp_count[cpu])
        assert page_alloc.drain_pages(self.zone, cpu) == held
        assert self.zone.pcp_count[cpu] == 0
        self.step()

    @rule()
    def drain_all(self):
        held = self.zone.pcp_pages()
        assert page_alloc.drain_all_pages(self.zone) == held
        assert self.zone.pcp_pages() == 0
        self.step()

    @rule(cpu=CPU)
    def fold(self, cpu):
        cpu = self.cpu(cpu)
        vmstat.refresh_cpu_vm_stats(self.zone, cpu)
        assert self.zone.vm_stat_diff[cpu] == 0
        self.step()

    @invariant()
    def invariants_hold(self):
        if self.zone is not None:
            check_page_level_zone(self.zone, self.held.map)


# (present_pages, cpus, extra Zone kwargs): odd sizes, tiny zones (< 32 MiB: batch 1, high 0),
# the batch-1 boundary, mid-size and 1 GiB zones, at 1, 4, 64 and 256 CPUs.
ZONE_CONFIGS = [
    (7, 1, {}),  # tiny and odd: fewer pages than one order-3 block
    (4097, 4, {}),  # odd, < 32 MiB: zone_batchsize 0 -> high 0, batch 1
    (8191, 64, {}),  # just under 32 MiB: high 0, batch 1
    (8192, 256, {}),  # 32 MiB: batch 1, high 6
    (12345, 4, {}),  # odd: batch 3, high 18
    (100003, 64, {}),  # odd, not a multiple of 1024: batch 31, high 186
    (GIB, 1, {}),  # 1 GiB zone
    (GIB, 4, {}),
    (GIB, 64, {}),
    (GIB, 256, {}),
    (5000, 4, {"pcp_batch": 5, "pcp_high": 3}),  # overrides: high below batch
    (3000, 4, {"stat_threshold": 0}),  # every counter update folds at once
]

PATCH_SETS = [pytest.param(Patches.none(), id="none"), pytest.param(Patches.all(), id="all")]


def _cfg_id(cfg):
    present, cpus, kw = cfg
    extra = "".join(f"-{k}{v}" for k, v in kw.items())
    return f"{present}p-{cpus}cpu{extra}"


@pytest.mark.parametrize("patches", PATCH_SETS)
@pytest.mark.parametrize("cfg", ZONE_CONFIGS, ids=_cfg_id)
def test_zone_invariants_hold_after_every_random_operation(cfg, patches):
    """After every random alloc/free/refill/drain/fold, no page is lost or duplicated, the buddy
    lists are well formed and the exact counter equals the buddy pages."""
    present, cpus, kw = cfg
    label = f"zone-{_cfg_id(cfg)}-{patches.label()}"
    run_state_machine_as_test(
        lambda: ZoneMachine(present, cpus, patches, label, kw), settings=MACHINE_SETTINGS
    )


# ---------------------------------------------------------------------------------------------
# Zone and CountingZone agree on every count under the same order-0 operation sequence
# ---------------------------------------------------------------------------------------------


class EquivalenceMachine(RuleBasedStateMachine):
    """The same order-0 operations on a ``Zone`` and a ``CountingZone`` built alike."""

    def __init__(self, present, cpus, patches, label):
        super().__init__()
        self.present = present
        self.cpus = cpus
        self.patches = patches
        self.label = label
        self.zone = None
        self.counting = None
        self.held = None

    def cpu(self, c):
        return c % self.cpus

    def step(self):
        OPS[self.label] += 1

    @initialize(fill=st.sampled_from([1.0, 1.0, 0.5, 0.0]))
    def build(self, fill):
        free_pages = int(self.present * fill)
        kw = dict(patches=self.patches, free_pages=free_pages)
        self.zone = Zone(self.present, self.cpus, **kw)
        self.counting = CountingZone(self.present, self.cpus, **kw)
        self.held = Allocated(self.present, free_pages)

    @rule(cpu=CPU, cold=st.booleans())
    def alloc(self, cpu, cold):
        cpu = self.cpu(cpu)
        page = page_alloc.buffered_rmqueue(self.zone, cpu, cold)
        counted = page_alloc.buffered_rmqueue(self.counting, cpu, cold)
        assert (page is None) == (counted is None)
        if page is not None:
            self.held.add(int(page))
        self.step()

    @precondition(lambda self: self.held is not None and self.held.order0)
    @rule(cpu=CPU, cold=st.booleans(), pick=PICK)
    def free(self, cpu, cold, pick):
        cpu = self.cpu(cpu)
        pfn = self.held.pop_order0(pick)
        a = page_alloc.free_hot_cold_page(self.zone, cpu, cold, pfn=pfn)
        b = page_alloc.free_hot_cold_page(self.counting, cpu, cold, pfn=pfn)
        assert a == b
        self.step()

    @rule(cpu=CPU, count=st.integers(0, 200), cold=st.booleans())
    def bulk_refill(self, cpu, count, cold):
        cpu = self.cpu(cpu)
        assert page_alloc.rmqueue_bulk(self.zone, cpu, count, cold) == page_alloc.rmqueue_bulk(
            self.counting, cpu, count, cold
        )
        self.step()

    @rule(cpu=CPU)
    def drain(self, cpu):
        cpu = self.cpu(cpu)
        assert page_alloc.drain_pages(self.zone, cpu) == page_alloc.drain_pages(self.counting, cpu)
        self.step()

    @rule()
    def drain_all(self):
        assert page_alloc.drain_all_pages(self.zone) == page_alloc.drain_all_pages(self.counting)
        self.step()

    @rule(cpu=CPU)
    def fold(self, cpu):
        cpu = self.cpu(cpu)
        assert vmstat.refresh_cpu_vm_stats(self.zone, cpu) == vmstat.refresh_cpu_vm_stats(
            self.counting, cpu
        )
        self.step()

    @invariant()
    def counts_agree(self):
        if self.zone is None:
            return
        z, c = self.zone, self.counting
        assert z.buddy_pages() == c.buddy_pages()
        assert np.array_equal(z.pcp_count, c.pcp_count)
        assert z.vm_stat == c.vm_stat
        assert np.array_equal(z.vm_stat_diff, c.vm_stat_diff)
        assert z.all_unreclaimable == c.all_unreclaimable
        assert z.pages_scanned == c.pages_scanned
        check_page_level_zone(z, self.held.map)
        check_counters(c)


EQUIV_CONFIGS = [(7, 1), (4097, 4), (8192, 64), (12345, 256), (100003, 4), (GIB, 64)]


@pytest.mark.parametrize("patches", PATCH_SETS)
@pytest.mark.parametrize("present, cpus", EQUIV_CONFIGS)
def test_counting_zone_matches_zone_after_every_random_operation(present, cpus, patches):
    """The same random order-0 sequence gives a Zone and a CountingZone identical buddy, pcp and
    vmstat counts after every operation."""
    label = f"equiv-{present}p-{cpus}cpu-{patches.label()}"
    run_state_machine_as_test(
        lambda: EquivalenceMachine(present, cpus, patches, label), settings=MACHINE_SETTINGS
    )


# ---------------------------------------------------------------------------------------------
# free_pcppages_bulk's per-page callback: the window patch 1 (72853e2) closes
# ---------------------------------------------------------------------------------------------


def _zone_with_full_pcp(cls, patches, n=31):
    zone = cls(GIB, 4, patches=patches)
    assert page_alloc.rmqueue_bulk(zone, 1, n) == n
    return zone


@pytest.mark.parametrize("cls", [Zone, CountingZone])
def test_free_pcppages_bulk_calls_on_page_once_per_page(cls):
    """free_pcppages_bulk calls on_page once per page with the running count of pages linked."""
    zone = _zone_with_full_pcp(cls, Patches.none())
    calls = []
    assert page_alloc.free_pcppages_bulk(zone, 1, 20, on_page=calls.append) == 20
    assert calls == list(range(1, 21))
    assert zone.pcp_count[1] == 11  # 31 - 20


@pytest.mark.parametrize("cls", [Zone, CountingZone])
def test_free_pcppages_bulk_frees_at_most_the_pages_on_the_list(cls):
    """free_pcppages_bulk asked for more pages than the list holds frees (and calls back for) only
    those."""
    zone = _zone_with_full_pcp(cls, Patches.none())
    calls = []
    assert page_alloc.free_pcppages_bulk(zone, 1, 100, on_page=calls.append) == 31
    assert calls == list(range(1, 32))
    assert zone.pcp_count[1] == 0
    assert exact_counter(zone) == zone.buddy_pages()


@pytest.mark.parametrize("cls", [Zone, CountingZone])
def test_free_pcppages_bulk_unpatched_counts_pages_before_they_are_on_the_lists(cls):
    """Unpatched, during the callback the exact counter exceeds the buddy pages by the pages not yet
    linked."""
    zone = _zone_with_full_pcp(cls, Patches.none())
    n = 31
    gaps = []

    def look(linked):
        gaps.append((linked, exact_counter(zone) - zone.buddy_pages()))

    page_alloc.free_pcppages_bulk(zone, 1, n, on_page=look)
    assert gaps == [(i, n - i) for i in range(1, n + 1)]
    assert all(gap > 0 for linked, gap in gaps if linked < n)  # counted, not yet on the lists


@pytest.mark.parametrize("cls", [Zone, CountingZone])
def test_free_pcppages_bulk_patched_counter_never_runs_ahead_of_the_lists(cls):
    """With counter_after_free the exact counter never exceeds the buddy pages during the
    callback."""
    zone = _zone_with_full_pcp(cls, Patches(counter_after_free=True))
    gaps = []

    def look(linked):
        gaps.append((linked, exact_counter(zone) - zone.buddy_pages()))

    page_alloc.free_pcppages_bulk(zone, 1, 31, on_page=look)
    assert gaps == [(i, -i) for i in range(1, 32)]  # linked but not yet counted
    assert exact_counter(zone) == zone.buddy_pages()


def test_free_pcppages_bulk_clears_all_unreclaimable_and_pages_scanned():
    """A bulk free into the buddy lists clears all_unreclaimable and pages_scanned."""
    zone = _zone_with_full_pcp(Zone, Patches.none())
    zone.all_unreclaimable = True
    zone.pages_scanned = 1234
    page_alloc.free_pcppages_bulk(zone, 1, 5)
    assert zone.all_unreclaimable is False and zone.pages_scanned == 0


# ---------------------------------------------------------------------------------------------
# Deterministic spot checks of the per-cpu list order and the pcp high/batch of small zones
# ---------------------------------------------------------------------------------------------


def test_rmqueue_bulk_hot_refill_is_consumed_in_physical_order():
    """A hot refill links pages in physical order from the head, so hot allocations return
    0, 1, 2."""
    zone = Zone(GIB, 1)
    assert page_alloc.rmqueue_bulk(zone, 0, 3, cold=False) == 3
    assert [page_alloc.buffered_rmqueue(zone, 0, cold=False) for _ in range(3)] == [0, 1, 2]


def test_rmqueue_bulk_cold_refill_is_consumed_in_physical_order():
    """A cold refill links each page before the previous one at the tail, so cold allocations return
    0, 1, 2."""
    # rmqueue_bulk: list_add_tail(&page->lru, list); list = &page->lru;  -> tail reads p0, p1, p2
    zone = Zone(GIB, 1)
    assert page_alloc.rmqueue_bulk(zone, 0, 3, cold=True) == 3
    assert [page_alloc.buffered_rmqueue(zone, 0, cold=True) for _ in range(3)] == [0, 1, 2]


def test_free_hot_cold_page_tiny_zone_frees_straight_to_buddy_lists():
    """Under 32 MiB (high 0, batch 1) every order-0 free goes straight back to the buddy lists."""
    zone = Zone(8191, 4)
    assert (int(zone.pcp_high[0]), int(zone.pcp_batch[0])) == (0, 1)
    pfn = page_alloc.buffered_rmqueue(zone, 0)
    assert zone.buddy_pages() == 8190 and zone.pcp_count[0] == 0
    assert page_alloc.free_hot_cold_page(zone, 0, pfn=pfn) == 1
    assert zone.buddy_pages() == 8191 and zone.pcp_count[0] == 0


def test_free_hot_cold_page_flushes_one_batch_when_count_reaches_high():
    """A 1 GiB zone's pcp list flushes a batch of 31 when a free brings it to high = 186."""
    zone = Zone(GIB, 2)
    page_alloc.rmqueue_bulk(zone, 0, 185)
    pfn = zone.rmqueue(0)
    mod_zone_page_state(zone, 0, -1)
    assert page_alloc.free_hot_cold_page(zone, 0, pfn=pfn) == 31
    assert zone.pcp_count[0] == 186 - 31
    assert exact_counter(zone) == zone.buddy_pages()


def test_zone_initial_layout_uses_maximal_aligned_blocks():
    """A fresh odd-sized zone lays its pages out as the largest aligned blocks that fit."""
    zone = Zone(4097, 1)  # 4 blocks of 1024 + 1 page: 4096 = 4 * 2^10, then pfn 4096 alone
    assert zone.nr_free_by_order() == [1] + [0] * 9 + [4]
    check_page_level_zone(zone, np.zeros(4097, dtype=np.int8))


def test___mod_zone_page_state_folds_only_beyond_threshold():
    """A CPU's diff may reach exactly ±stat_threshold; one page more folds the whole diff into
    vm_stat."""
    zone = CountingZone(GIB, 4, stat_threshold=30)
    start = zone.vm_stat
    mod_zone_page_state(zone, 2, 30)  # x = 30, not > 30: kept in the diff
    assert (zone.vm_stat, int(zone.vm_stat_diff[2])) == (start, 30)
    mod_zone_page_state(zone, 2, 1)  # x = 31 > 30: fold 31, diff 0
    assert (zone.vm_stat, int(zone.vm_stat_diff[2])) == (start + 31, 0)
    mod_zone_page_state(zone, 2, -30)  # x = -30, not < -30: kept
    assert (zone.vm_stat, int(zone.vm_stat_diff[2])) == (start + 31, -30)
    mod_zone_page_state(zone, 2, -1)  # x = -31 < -30: fold -31
    assert (zone.vm_stat, int(zone.vm_stat_diff[2])) == (start, 0)
    mod_zone_page_state(zone, 2, -31)  # one delta of 31 folds at once
    assert (zone.vm_stat, int(zone.vm_stat_diff[2])) == (start - 31, 0)
    mod_zone_page_state(zone, 3, 7)
    assert vmstat.refresh_cpu_vm_stats(zone, 3) == 7  # the periodic fold moves the diff over
    assert (zone.vm_stat, int(zone.vm_stat_diff[3])) == (start - 24, 0)


def test_drain_all_counted_matches_drain_all_pages():
    """CountingZone.drain_all_counted equals page_alloc.drain_all_pages CPU by CPU."""
    import numpy as np

    from allocsim.mmzone import CountingZone
    from allocsim.page_alloc import drain_all_pages, rmqueue_bulk

    rng = np.random.default_rng(7)
    for threshold in (0, 5, 30, 125):
        a = CountingZone(262144, 64, stat_threshold=threshold, free_pages=5000)
        b = CountingZone(262144, 64, stat_threshold=threshold, free_pages=5000)
        for cpu in rng.integers(0, 64, 40):
            n = int(rng.integers(1, 80))
            rmqueue_bulk(a, int(cpu), n)
            rmqueue_bulk(b, int(cpu), n)
        assert a.drain_all_counted() == drain_all_pages(b)
        assert a.buddy_pages() == b.buddy_pages() and a.vm_stat == b.vm_stat
        assert (a.vm_stat_diff == b.vm_stat_diff).all() and (a.pcp_count == b.pcp_count).all()


def test_refill_counted_matches_rmqueue_bulk_in_order():
    """CountingZone.refill_counted equals one rmqueue_bulk per CPU in the given order."""
    import numpy as np

    from allocsim.mmzone import CountingZone
    from allocsim.page_alloc import rmqueue_bulk

    rng = np.random.default_rng(11)
    for free in (0, 10, 100, 3000):
        a = CountingZone(262144, 128, stat_threshold=40, free_pages=free)
        b = CountingZone(262144, 128, stat_threshold=40, free_pages=free)
        cpus = rng.permutation(128)[:90]
        got = a.refill_counted(cpus)
        for cpu, g in zip(cpus, got, strict=True):
            assert rmqueue_bulk(b, int(cpu), int(b.pcp_batch[cpu])) == g
        assert a.buddy_pages() == b.buddy_pages() and a.vm_stat == b.vm_stat
        assert (a.vm_stat_diff == b.vm_stat_diff).all() and (a.pcp_count == b.pcp_count).all()
