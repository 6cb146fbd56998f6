"""Reading ahead on a thread: order kept, nothing dropped, errors after the items before them,
and an abandoned iteration ends the reader and closes its generator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from fer_live.capture.read_ahead import ReadAhead


def test_every_item_arrives_in_order_through_a_small_queue() -> None:
    def slow_consumer_source() -> Iterator[int]:
        yield from range(200)

    got = []
    for item in ReadAhead(slow_consumer_source, depth=2):
        got.append(item)
        if item % 50 == 0:
            time.sleep(0.01)  # the reader fills the queue and waits: nothing is dropped
    assert got == list(range(200))


def test_an_error_is_raised_after_the_items_read_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt after 2")

    got = []
    with pytest.raises(ValueError, match="corrupt after 2"):
        for item in ReadAhead(failing, depth=4):
            got.append(item)
    assert got == [1, 2]


def test_abandoning_the_iteration_stops_the_reader_and_closes_its_generator() -> None:
    closed, threads = threading.Event(), []

    def endless() -> Iterator[int]:
        threads.append(threading.current_thread())
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    reader = ReadAhead(endless, depth=3)
    items = iter(reader)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # e.g. Ctrl-C in the consumer, or a frame limit reached
    assert closed.is_set()  # closed on the reader thread, before close() returned
    assert threads and threads[0] is not threading.current_thread()
    assert not threads[0].is_alive()


def test_stop_before_iterating_is_harmless() -> None:
    ReadAhead(lambda: iter([1]), depth=1).stop()


def test_cancel_ends_the_wait_for_a_slow_item() -> None:
    # given a reader whose second item takes long (a stuck read), and a cancel set meanwhile
    release, cancel = threading.Event(), threading.Event()

    def stuck() -> Iterator[int]:
        yield 1
        release.wait(10.0)
        yield 2

    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    got = []
    try:
        # when
        for item in ReadAhead(stuck, depth=2, cancel=cancel):
            got.append(item)
            if cancel.is_set():
                release.set()  # only reached if the iteration went on after the cancel
    finally:
        release.set()
        timer.cancel()
    # then: the iteration ended during the wait, without the late item
    assert got == [1]
