"""The broker-side backlog estimate and the retained ``behind`` status it drives (issue 21)."""

from __future__ import annotations

from cloud.ingest.backlog import BASELINE_ROTATE_S, BacklogEstimate, BehindStatus
from guanjia.core.wire import parse_ingest_behind

T0 = 1_800_000_000_000


def test_clock_skew_is_not_lag_but_queueing_is() -> None:
    est = BacklogEstimate()
    # three gateways: on time, 90 s fast, 40 s slow — each received 50 ms after sending
    fresh = [(1, T0 - 50, T0), (2, T0 + 90_000 - 50, T0), (3, T0 - 40_050, T0)]
    assert est.observe(fresh, T0) == 0.0
    # now their messages waited 12 s at the broker: that is the lag, whatever their clocks say
    late = [(g, sent + 1_000, received + 1_000 + 12_000) for g, sent, received in fresh]
    assert est.observe(late, T0 + 13_000) == 12.0
    # messages that could not be attributed (dead letters: no gateway or sent time) are ignored
    assert est.observe([(None, None, T0), (4, None, T0)], T0 + 13_000) == 12.0


def test_one_gateway_whose_clock_jumps_back_does_not_raise_the_flag() -> None:
    est = BacklogEstimate()
    gateways = range(1, 6)
    est.observe([(g, T0 - 20, T0) for g in gateways], T0)
    # gateway 1's clock was set back 60 s: its delay grows by 60 s; the median does not
    batch = [(1, T0 + 1_000 - 60_000, T0 + 1_000), *((g, T0 + 980, T0 + 1_000) for g in range(2, 6))]
    assert est.observe(batch, T0 + 1_000) == 0.0
    # after two baseline periods its new baseline is learnt
    later = T0 + int(2 * BASELINE_ROTATE_S * 1000) + 5_000
    for step in (later - int(BASELINE_ROTATE_S * 1000), later):
        est.observe([(1, step - 60_000, step)], step)
    assert est.observe([(1, later + 1 - 60_000, later + 1)], later + 1) == 0.0


def test_status_goes_up_refreshes_and_clears_with_hysteresis() -> None:
    status = BehindStatus("w-0", threshold_s=5.0, expiry_s=20.0)
    first = status.tick(0.0, T0)  # a (re)started worker clears what its previous life left
    assert first is not None
    assert first.payload == b""
    status.sent(first)
    assert status.tick(1.0, T0) is None
    up = status.tick(6.0, T0)
    assert up is not None
    assert up.expiry_s == 20
    assert parse_ingest_behind(up.payload) == 20.0
    status.sent(up)
    again = status.tick(3.0, T0)  # between half the threshold and the threshold: still behind (refresh)
    assert again is not None
    assert parse_ingest_behind(again.payload) == 20.0
    status.sent(again)
    down = status.tick(2.0, T0)
    assert down is not None
    assert down.payload == b""
    assert parse_ingest_behind(down.payload) is None
    assert status.tick(2.0, T0) is not None  # not yet accepted by the client: said again
    status.sent(down)
    assert status.tick(2.0, T0) is None
    assert not status.behind


def test_a_stalled_worker_is_behind_and_clears_on_stop() -> None:
    status = BehindStatus("w-0")
    first = status.tick(0.0, T0)
    assert first is not None
    status.sent(first)
    up = status.tick(0.0, T0, stalled=True)
    assert up is not None
    assert up.payload
    status.sent(up)
    stop = status.clear()
    assert stop is not None
    assert stop.payload == b""
    assert not status.behind


def test_status_payloads_are_parsed_strictly() -> None:
    assert parse_ingest_behind(b"") is None
    assert parse_ingest_behind(b"not json ingest_behind") is None
    assert parse_ingest_behind(b'{"kind": "ingest_behind", "expiry_s": true}') is None
    assert parse_ingest_behind(b'{"kind": "ingest_behind", "expiry_s": -1}') is None
    assert parse_ingest_behind(b'{"kind": "ingest_behind", "expiry_s": 1e9}') == 3600.0
