"""A device whose clock is wrong (10 min fast, 10 min slow, or jumping) is timed by the agent's clock.

Issue 24: readings and alarm events carry the agent's time, the device's time travels beside them as
the ``device_clock`` point, and the rules' ``for:`` durations run on the agent's clock. These tests
drive the real MQTT device listener and the real rule adapter (shipped rule library) with an
injected clock, so every timing is exact; the broker path is covered in ``test_mqtt_devices``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from device_profiles import find_profile
from device_profiles.payload import encode_payload
from edge.config import MqttDeviceConfig, RulesConfig, UplinkConfig
from edge.mqtt_devices import MAX_SKEW_MS, MqttDeviceListener
from edge.outbox import Outbox
from edge.rules_runner import RuleRunner
from guanjia.core.wire import Quality, Scalar

T0 = 1_796_000_000_000  # 2026-12-01, an arbitrary fixed agent time (epoch ms)
GATE, LIFT = "b1-gate-1", "b1-lift-1"
TOPIC = f"devices/c1/{GATE}/state"
MIN = 60_000


class Site:
    """The agent's reading path for one gate and one lift: listener → rules, on a manual clock."""

    def __init__(self, tmp_path: Path) -> None:
        self.now = T0
        self.readings: list[tuple[str, int, dict[str, Scalar], dict[str, Quality]]] = []
        self.alarms: list[dict[str, Any]] = []
        self.profile = find_profile("access-gate")
        self.rules = RuleRunner(RulesConfig(builtin=True, state_path=tmp_path / "rules.json"),
                                self.alarms.append, self.clock)
        self.rules.load({GATE: ("gate", "access-gate"), LIFT: ("elevator", "elevator-gbt24476")})
        self.listener = MqttDeviceListener(
            [(MqttDeviceConfig(id=GATE, profile="access-gate"), self.profile)], community="c1",
            uplink=UplinkConfig(url="mqtt://127.0.0.1:1"), url=None, gateway="gw-1", sink=self,
            outbox=Outbox(tmp_path / "o.db", gateway="gw-1"), clock=self.clock)

    def clock(self) -> int:
        return self.now

    # ReadingSink
    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        self.readings.append((device, ts_ms, values, quality))
        kind, profile = ("gate", "access-gate") if device == GATE else ("elevator", "elevator-gbt24476")
        self.rules.process(device, kind, profile, ts_ms, values, quality)

    def event(self, device: str, type_: str, data: dict[str, object]) -> None:
        return None

    def gate_says(self, offset_ms: int, **values: bool | int | float | str) -> None:
        """The gate publishes its state stamped with its own clock (agent time + ``offset_ms``)."""
        state: dict[str, bool | int | float | str] = {"door_state": "closed", "lock_state": "locked",
                                                      "forced_open": False}
        state.update(values)
        self.listener.on_message(TOPIC, encode_payload(self.profile, state, self.now + offset_ms))

    def run(self, until_ms: int, *, gate_offset: int | None = None, lift_offset: int | None = None) -> None:
        """Advance agent time second by second to ``until_ms``: the gate heartbeats every 30 s, the
        lift answers its fast group every 1 s and its slow group (box clock) every 30 s, rules tick."""
        while self.now < until_ms:
            self.now += 1000
            if gate_offset is not None and (self.now - T0) % 30_000 == 0:
                self.gate_says(gate_offset)
            if lift_offset is not None:
                self.reading(LIFT, self.now, {"car_moving": False}, {"car_moving": Quality.GOOD})
                if (self.now - T0) % 30_000 == 0:
                    box = (self.now + lift_offset) // 1000
                    self.reading(LIFT, self.now, {"device_clock": box}, {"device_clock": Quality.GOOD})
            self.rules.tick()

    def raised(self, rule: str) -> list[dict[str, Any]]:
        return [a for a in self.alarms if a["rule"] == rule and a["state"] == "raise"]


@pytest.mark.parametrize("offset_s", [600, -600, 240, -240])
def test_gate_reading_is_timed_by_the_agent_and_keeps_the_device_time(tmp_path: Path, offset_s: int) -> None:
    site = Site(tmp_path)
    site.gate_says(offset_s * 1000, door_state="open")
    [(device, ts, values, quality)] = site.readings
    assert device == GATE
    assert ts == T0  # the agent's receive time, whatever the gate's clock says
    assert values["device_clock"] == (T0 + offset_s * 1000) // 1000
    skewed = abs(offset_s * 1000) > MAX_SKEW_MS
    assert set(quality.values()) == {Quality.CLOCK_SKEW if skewed else Quality.GOOD}


def test_gate_without_a_timestamp_has_no_device_clock(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.listener.on_message(TOPIC, b'{"door": 1}')
    [(_, ts, values, quality)] = site.readings
    assert ts == T0
    assert "device_clock" not in values
    assert quality == {"door_state": Quality.GOOD}


@pytest.mark.parametrize("offset_s", [600, -600], ids=["fast", "slow"])
def test_gate_clock_skew_alarm_runs_on_the_agent_clock(tmp_path: Path, offset_s: int) -> None:
    """``gate-clock-skew`` (``for: 1m``) is raised one minute of *agent* time after the first flagged
    reading, stamped with the agent's time, for a clock 10 minutes fast as for one 10 minutes slow."""
    site = Site(tmp_path)
    site.gate_says(offset_s * 1000)  # first flagged reading at T0
    site.run(T0 + 3 * MIN, gate_offset=offset_s * 1000)
    [alarm] = site.raised("gate-clock-skew")
    assert alarm["ts"] - T0 == MIN  # flagged at T0, held 1 min, seen by the next 1 s tick
    assert all(ts <= site.now for _, ts, _, _ in site.readings)


def test_gate_clock_jumping_ahead_and_back_does_not_stall_its_rules(tmp_path: Path) -> None:
    """A gate clock jumps 4 min ahead (not enough to be flagged) and back. With device time, the
    readings after the jump back would be older than the last one and skipped by the rules as out of
    order for 4 minutes: a forced door in that window raised nothing. On the agent's clock it does."""
    site = Site(tmp_path)
    site.run(T0 + 30_000, gate_offset=0)
    site.run(T0 + 90_000, gate_offset=4 * MIN)  # the jump ahead
    site.run(T0 + 120_000, gate_offset=0)  # and back
    site.now += 1000
    site.gate_says(0, door_state="open", forced_open=True)
    [alarm] = site.raised("gate-forced-open")
    assert alarm["ts"] == site.now
    assert [ts for _, ts, _, _ in site.readings] == sorted(ts for _, ts, _, _ in site.readings)
    assert not site.raised("gate-clock-skew")  # 4 min is within the tolerance


@pytest.mark.parametrize("offset_s", [600, -600], ids=["fast", "slow"])
def test_lift_box_clock_skew_alarm_timing(tmp_path: Path, offset_s: int) -> None:
    """``elevator-clock-skew`` compares the box clock (slow group, every 30 s) with the agent's time
    of the reading; raised ``for: 1m`` after the first skewed box-clock reading, never later than one
    slow-group period + 1 min + one tick after the fault began (the 75 s of the old chaos scenario
    were less than that worst case of 91 s)."""
    site = Site(tmp_path)
    site.run(T0 + 5_000, lift_offset=0)
    fault_at = site.now
    site.run(T0 + 4 * MIN, lift_offset=offset_s * 1000)
    [alarm] = site.raised("elevator-clock-skew")
    first_skewed = T0 + 30_000  # the next slow-group poll after the fault
    assert alarm["ts"] - first_skewed == MIN
    assert alarm["ts"] - fault_at <= 30_000 + MIN + 1000
    assert abs(alarm["value"] - abs(offset_s)) <= 1


def test_lift_box_clock_that_jumps_raises_and_clears_on_the_agent_clock(tmp_path: Path) -> None:
    """The box clock jumps 10 min ahead, stays there 2 min, then is set right: raised after 1 min,
    cleared after ``clear_for: 5m`` of agent time, both events stamped with the agent's clock."""
    site = Site(tmp_path)
    site.run(T0 + 30_000, lift_offset=0)
    site.run(T0 + 150_000, lift_offset=10 * MIN)  # box readings at 60, 90, 120, 150 s are 10 min ahead
    site.run(T0 + 12 * MIN, lift_offset=0)
    events = [(a["state"], a["ts"] - T0) for a in site.alarms if a["rule"] == "elevator-clock-skew"]
    assert events == [("raise", 120_000), ("clear", 180_000 + 5 * MIN)]


def test_the_agent_times_everything_by_its_injected_clock(tmp_path: Path) -> None:
    """One clock for the whole agent (guanjia.core.clock): readings of MQTT devices, Modbus polls, events,
    rules and the outbox all read the injected one."""
    from datetime import UTC, datetime

    from edge.agent import Agent
    from edge.config import AgentConfig, DeviceConfig, LinkConfig, MqttDevicesConfig, OutboxConfig
    from guanjia.core.clock import ManualClock, to_ms

    clock = ManualClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    config = AgentConfig(
        gateway="gw-1", community="c1", uplink=UplinkConfig(url="mqtt://127.0.0.1:1"),
        outbox=OutboxConfig(path=tmp_path / "o.db"),
        links=[LinkConfig(type="tcp", host="127.0.0.1", port=1,
                          devices=[DeviceConfig(id=LIFT, profile="elevator-gbt24476")])],
        mqtt_devices=MqttDevicesConfig(devices=[MqttDeviceConfig(id=GATE, profile="access-gate")]),
        rules=RulesConfig(builtin=True, state_path=tmp_path / "r.json"))
    agent = Agent(config, clock=clock)
    want = to_ms(clock.now())
    assert agent.now_ms() == want
    assert agent.listener.clock() == want
    assert agent.devices[LIFT].clock() == want
    assert agent.rules.clock() == want
    assert agent.outbox.clock() == want
    clock.advance(timedelta(minutes=10))
    assert agent.listener.clock() == want + 10 * MIN
