"""The dispatcher's pacing keeps SubmitJob under its share of Batch's 50 TPS, with no burst."""

from __future__ import annotations

from batchplane.adapters.batch import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_calls_are_paced_at_the_rate_with_no_initial_burst() -> None:
    # Given a limiter at 8 calls per second on a fake clock
    clock = FakeClock()
    limiter = RateLimiter(8, clock=clock, sleep=clock.sleep)
    stamps = []

    # When 17 calls are made back to back
    for _ in range(17):
        limiter.acquire()
        stamps.append(clock.now)

    # Then they are 1/8 s apart: 17 calls take 2 s, and no 1-second window holds more than 8
    assert stamps[-1] == 2.0
    assert max(sum(1 for s in stamps if start <= s < start + 1) for start in stamps) == 8


def test_idle_time_does_not_bank_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60  # a minute idle

    for _ in range(3):
        limiter.acquire()

    assert clock.now == 60 + 0.2  # one call at once, the next two paced
