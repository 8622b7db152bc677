"""WriteLog: what it records, which reads it names as suspects, its window and when it starts afresh."""

from __future__ import annotations

from strongroom.storage.sqlite_writer import WriteLog


def _log_at(counter: int, keep: int = 4096) -> WriteLog:
    log = WriteLog(keep)
    log.begin(counter)
    return log


def _commit(log: WriteLog, written: list[bytes], cleared: list[tuple[bytes, bytes]] | None = None) -> None:
    """Log one commit as the writer does: within a group started by begin(), then ``top`` set."""
    log.append(written, cleared or [])
    log.top = log.base + len(log.entries)


def test_records_each_commit_numbered_by_the_counter() -> None:
    log = _log_at(10)
    _commit(log, [b"a", b"b"])
    _commit(log, [b"c"], [(b"x", b"y")])
    assert log.base == 10
    assert log.top == 12
    assert log.entries == [(frozenset({b"a", b"b"}), []), (frozenset({b"c"}), [(b"x", b"y")])]


def test_point_reads_are_suspect_only_if_written_after_the_snapshot() -> None:
    log = _log_at(0)
    _commit(log, [b"a"])  # 0 -> 1
    _commit(log, [b"b"])  # 1 -> 2
    _commit(log, [b"a"])  # 2 -> 3
    keys = [b"a", b"b", b"c"]
    assert log.suspects(0, keys, []) == ({b"a", b"b"}, [])
    assert log.suspects(1, keys, []) == ({b"a", b"b"}, [])
    assert log.suspects(2, keys, []) == ({b"a"}, [])
    assert log.suspects(3, keys, []) == (set(), [])


def test_cleared_range_makes_point_reads_inside_it_suspect() -> None:
    log = _log_at(0)
    _commit(log, [], [(b"b", b"d")])  # 0 -> 1
    _commit(log, [b"z"])  # 1 -> 2
    keys = [b"a", b"b", b"c", b"c\xff", b"d"]
    # Half open: "b" and everything below "d" are cleared, "d" is not.
    assert log.suspects(0, keys, []) == ({b"b", b"c", b"c\xff"}, [])
    # A clear before the snapshot does not count.
    assert log.suspects(1, keys, []) == (set(), [])


def test_range_reads_are_suspect_when_a_later_write_falls_inside() -> None:
    log = _log_at(0)
    _commit(log, [b"m"])  # 0 -> 1
    ranges = [(b"a", b"m"), (b"m", b"n"), (b"l", b"m\x00"), (b"n", b"z")]
    # [a, m) excludes m; [m, n) and [l, m\x00) contain it; [n, z) does not.
    assert log.suspects(0, [], ranges) == (set(), [1, 2])
    assert log.suspects(1, [], ranges) == (set(), [])


def test_range_reads_are_suspect_when_a_later_clear_overlaps() -> None:
    log = _log_at(0)
    _commit(log, [], [(b"c", b"f")])  # 0 -> 1
    ranges = [(b"a", b"c"), (b"a", b"c\x00"), (b"e", b"g"), (b"f", b"g"), (b"d", b"e"), (b"a", b"z")]
    # Touching bounds do not overlap: [a, c) and [f, g) are untouched.
    assert log.suspects(0, [], ranges) == (set(), [1, 2, 4, 5])


def test_point_write_inside_a_read_range_does_not_make_point_reads_suspect() -> None:
    # A point write names only its own key; the neighbours a range read covered are not suspects.
    log = _log_at(0)
    _commit(log, [b"b"])
    assert log.suspects(0, [b"a", b"c"], [(b"a", b"d")]) == (set(), [0])


def test_begin_at_the_logged_top_keeps_the_log() -> None:
    log = _log_at(5)
    _commit(log, [b"a"])
    log.begin(6)
    assert log.base == 5
    assert log.suspects(5, [b"a"], []) == ({b"a"}, [])


def test_begin_elsewhere_starts_afresh() -> None:
    # Another connection committed 6 -> 7: the log cannot vouch for anything before 7.
    log = _log_at(5)
    _commit(log, [b"a"], [(b"x", b"y")])
    log.begin(7)
    assert (log.base, log.top, log.entries) == (7, 7, [])
    assert log.suspects(5, [b"a"], []) is None
    assert log.suspects(6, [b"a"], []) is None
    assert log.suspects(7, [b"a", b"x"], [(b"a", b"z")]) == (set(), [])


def test_failure_resets_top_so_the_next_group_starts_afresh() -> None:
    log = _log_at(5)
    _commit(log, [b"a"])
    log.top = None  # what the writer does when a group fails
    log.begin(6)  # even at the same counter
    assert log.entries == []
    assert log.suspects(5, [b"a"], []) is None
    assert log.suspects(6, [b"a"], []) == (set(), [])


def test_window_keeps_between_keep_and_twice_keep_commits() -> None:
    keep = 3
    log = _log_at(0, keep)
    for i in range(2 * keep + 1):  # 0 -> 7, one key per commit
        log.begin(i)
        _commit(log, [b"k%d" % i])
    assert log.base == 0  # not trimmed until the next begin() sees more than 2 * keep entries
    log.begin(7)
    assert log.base == 7 - keep
    assert len(log.entries) == keep
    assert log.suspects(3, [b"k0", b"k3", b"k6"], []) is None
    assert log.suspects(4, [b"k0", b"k3", b"k4", b"k6"], []) == ({b"k4", b"k6"}, [])
    # Trimming drops the per-key index entries of dropped commits only.
    _commit(log, [b"k0"])  # 7 -> 8
    assert log.suspects(4, [b"k0", b"k1", b"k2"], []) == ({b"k0"}, [])


def test_trimming_keeps_a_key_rewritten_after_the_cut() -> None:
    keep = 2
    log = _log_at(0, keep)
    for i, key in enumerate([b"a", b"x", b"y", b"a", b"z"]):  # "a" written at 0 -> 1 and 3 -> 4
        log.begin(i)
        _commit(log, [key])
    log.begin(5)
    assert log.base == 3
    assert log.suspects(3, [b"a", b"x"], []) == ({b"a"}, [])
    assert log.suspects(4, [b"a"], []) == (set(), [])


def test_clear_range_before_the_window_start_does_not_leak_into_later_snapshots() -> None:
    keep = 1
    log = _log_at(0, keep)
    log.begin(0)
    _commit(log, [], [(b"a", b"z")])  # 0 -> 1
    for i in range(1, 4):
        log.begin(i)
        _commit(log, [b"k%d" % i])
    log.begin(4)
    assert log.base >= 1  # the clear was trimmed away
    assert log.suspects(log.base, [b"m"], [(b"a", b"b")]) == (set(), [])
    assert log.suspects(0, [b"m"], []) is None
