import numpy as np
import pytest

from realtime.ringbuffer import RingBuffer


def test_read_last_returns_newest_samples_across_the_wrap():
    ring = RingBuffer(10)
    data = np.arange(27, dtype=np.float32)
    for i in range(0, 27, 4):
        ring.write(data[i : i + 4])
    assert ring.written == 27
    np.testing.assert_array_equal(ring.read_last(10), data[-10:])
    np.testing.assert_array_equal(ring.read_last(3), data[-3:])


def test_read_last_zero_fills_what_was_never_written():
    ring = RingBuffer(8)
    ring.write(np.array([1, 2, 3], dtype=np.float32))
    np.testing.assert_array_equal(ring.read_last(5), [0, 0, 1, 2, 3])
    assert ring.read_last(0).shape == (0,)


def test_read_more_than_capacity_is_refused():
    with pytest.raises(ValueError):
        RingBuffer(4).read_last(5)
