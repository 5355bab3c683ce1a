"""The pure core of reading: the ancestor walk, clipping, file selection (no I/O, milliseconds)."""

from __future__ import annotations

from runlake.read.lineage import Index, clip, own_parts, select_files, walk
from runlake.store.layout import MAX_STEP, PartFile

# base(0) -fork@60-> child(0) -fork@100-> grand(0); base rewound at 90 into base(1)
LINKS = {
    ("base", 0): (None, None, None),
    ("base", 1): ("base", 0, 90),
    ("child", 0): ("base", 0, 60),
    ("grand", 0): ("child", 0, 100),
}


def test_a_root_node_is_its_own_closure():
    assert walk(LINKS, ("base", 0)) == ([(0, "base", 0, -1, MAX_STEP)], True)


def test_a_chain_contributes_disjoint_ranges_cut_by_every_cutoff_below():
    rows, complete = walk(LINKS, ("grand", 0))
    assert complete
    assert rows == [
        (0, "grand", 0, 100, MAX_STEP),
        (1, "child", 0, 60, 100),
        (2, "base", 0, -1, 60),
    ]


def test_a_rewind_is_a_parent_like_a_fork():
    assert walk(LINKS, ("base", 1))[0] == [(0, "base", 1, 90, MAX_STEP), (1, "base", 0, -1, 90)]


def test_a_walk_that_meets_an_unknown_ancestor_says_so():
    rows, complete = walk({("x", 0): ("gone", 0, 5)}, ("x", 0))
    assert not complete and rows == [(0, "x", 0, 5, MAX_STEP)]
    assert walk(LINKS, ("nobody", 0)) == ([], False)


def test_a_cutoff_above_a_lower_one_does_not_widen_the_range():
    links = {("a", 0): (None, None, None), ("b", 0): ("a", 0, 50), ("c", 0): ("b", 0, 80)}
    # c inherits b's rows in (50, 80] and a's rows up to 50, not up to 80
    assert walk(links, ("c", 0))[0][2] == (2, "a", 0, -1, 50)


def test_clip_cuts_at_the_step_and_numbers_the_kept_nodes_again():
    rows = walk(LINKS, ("grand", 0))[0]
    assert clip(rows, 100) == [(0, "child", 0, 60, 100), (1, "base", 0, -1, 60)]
    assert clip(rows, 30) == [(0, "base", 0, -1, 30)]
    assert clip(rows, 150)[0] == (0, "grand", 0, 100, 150)


def test_select_files_keeps_overlapping_ones_ancestors_first_each_once():
    files = {
        ("base", 0): [("p0", 0, 49, False), ("p1", 50, 99, False), ("pack", 0, 119, True)],
        ("child", 0): [("c0", 61, 80, False), ("c1", 101, 129, False), ("pack", 61, 129, True)],
        ("grand", 0): [("g0", 101, 139, False)],
    }
    chosen = select_files(files, walk(LINKS, ("grand", 0))[0])
    assert chosen.parts == ["p0", "p1", "c0", "g0"]  # c1 lies above child's cutoff 100
    assert chosen.packs == ["pack"]
    assert not select_files({}, walk(LINKS, ("grand", 0))[0])


def test_a_part_ending_at_a_nodes_lower_bound_is_not_needed():
    files = {("child", 0): [("c0", 50, 60, False)], ("base", 0): []}
    assert select_files(files, [(0, "child", 0, 60, MAX_STEP)]).parts == []


def test_own_parts_drop_what_a_pack_holds():
    listed = [PartFile("a", 0, 9, 1), PartFile("b", 10, 19, 1), PartFile("c", 20, 29, 1)]
    assert [p.path for p in own_parts(listed, [(0, 19)])] == ["c"]


def test_the_index_walks_and_selects_with_the_same_functions():
    index = Index(1, {"grand": 0}, LINKS, {("grand", 0): [("g0", 101, 139, False)]})
    assert index.closure("grand", 0) == walk(LINKS, ("grand", 0))[0]
    assert index.select(index.closure("grand", 0)).parts == ["g0"]
