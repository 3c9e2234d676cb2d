"""pg2_tf.core.atomic: a file is written whole or not at all, by any number of writers at once."""

import glob
import os
import threading

import pytest

from pg2_tf.core import atomic


def test_a_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "scores.json"
    target.write_text("old")
    atomic.write_text(target, '{"ssim": 0.7}\n')
    assert target.read_text() == '{"ssim": 0.7}\n'
    assert os.listdir(tmp_path) == ["scores.json"]


def test_while_the_block_writes_readers_see_the_old_file_and_globs_miss_the_new(tmp_path):
    target = tmp_path / "6_G1.png"
    target.write_bytes(b"old picture")
    with atomic.replacing(target) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(b"half of a new pict")
        assert target.read_bytes() == b"old picture"
        assert glob.glob(str(tmp_path / "*.png")) == [str(target)]
        assert glob.glob(str(tmp_path / "*")) == [str(target)]
    assert not os.path.exists(temporary)


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "params.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic.replacing(target) as temporary:
            with open(temporary, "w") as handle:
                handle.write("{")
            raise RuntimeError("disk gone")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["params.json"]


def test_two_writers_of_one_path_at_once_each_write_a_whole_file(tmp_path):
    # Interleaved: A opens, B opens, both write, B renames, A renames. With one shared temporary
    # name B's rename would take A's half-written file and A's rename would fail.
    target = tmp_path / "model.tflite"
    a_big, b_big = b"A" * 2_000_000, b"B" * 1_000_000
    with atomic.replacing(target) as temporary_a:
        with atomic.replacing(target) as temporary_b:
            assert temporary_a != temporary_b
            with open(temporary_a, "wb") as handle:
                handle.write(a_big[:1000])
            with open(temporary_b, "wb") as handle:
                handle.write(b_big)
        assert target.read_bytes() == b_big
        with open(temporary_a, "ab") as handle:
            handle.write(a_big[1000:])
    assert target.read_bytes() == a_big


def test_threads_writing_one_path_leave_one_of_their_whole_files(tmp_path):
    target = tmp_path / "000001.json"
    contents = [bytes([65 + n]) * (200_000 + n) for n in range(8)]
    start = threading.Barrier(len(contents))

    def write(data):
        start.wait()
        for _ in range(5):
            atomic.write_bytes(target, data)

    threads = [threading.Thread(target=write, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in contents
    assert os.listdir(tmp_path) == ["000001.json"]


def test_a_written_file_has_the_permissions_of_any_new_file(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    reference = tmp_path / "made_by_open"
    reference.write_bytes(b"x")
    atomic.write_bytes(tmp_path / "made_atomically", b"x")
    assert os.stat(tmp_path / "made_atomically").st_mode == os.stat(reference).st_mode


def test_the_temporary_keeps_the_extension_only_when_asked(tmp_path):
    target = tmp_path / "walk.mp4"
    assert not atomic.temporary_path(target).endswith(".mp4")
    kept = atomic.temporary_path(target, keep_extension=True)
    assert kept.endswith(".partial.mp4") and os.path.basename(kept).startswith(".walk.mp4.")


def test_leftovers_of_a_killed_writer_are_found_and_only_they_are_removed(tmp_path):
    leftover = atomic.temporary_path(tmp_path / "Market1501_test_00000-of-00002.tfrecord")
    open(leftover, "wb").close()
    kept = [".Market1501_test.plan", "persons_test.txt", ".hidden"]
    for name in kept:
        (tmp_path / name).write_text("keep")
    (tmp_path / "sub").mkdir()
    nested = atomic.temporary_path(tmp_path / "sub" / "x.png")
    open(nested, "wb").close()
    assert atomic.remove_leftovers(tmp_path) == [leftover]
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, "sub"])
    assert os.path.exists(nested)
    assert atomic.remove_leftovers(tmp_path / "no such folder") == []
