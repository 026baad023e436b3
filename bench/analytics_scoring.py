"""Event-level scoring of detections against ground-truth fault labels.

The unit is the *event*, not the hour: a butler cares whether a fault produced a work order and
whether a work order pointed at a real fault, not how many hours were flagged. So:

- a detection **matches** a label when it is on the same device and was raised in
  ``[label.start, label.end + grace]`` (nothing before the fault began counts — a detector cannot
  know the future, and an early "hit" would be a false alarm that got lucky);
- **recall** of a fault kind = labels of that kind matched by at least one detection / labels;
- **precision** = detections that match some label / all detections (per kind: by the kind the
  detector claimed for unmatched ones, by the label's kind for matched ones);
- **false alarms per device-week** = unmatched detections raised in fault-free time, divided by
  the fault-free device-weeks scored (time outside every label window of that device);
- **lead time** of a gradual fault = when the hard-threshold rule fired (``label.threshold_ms``)
  minus when the first matching detection was raised; faults whose threshold never fired inside
  the run are counted separately (their lead is at least the remaining run, not a number).

This is the evaluation harness, not the product (it was ``cloud/analytics/evaluation.py``): the
labels come from the simulators' labelled fleet (:class:`simulators.labelled_fleet.FaultLabel`),
the detections are what the product's detectors emit (:class:`cloud.analytics.detection.Detection`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cloud.analytics.detection import Detection
from cloud.analytics.frames import HOUR_MS
from simulators.labelled_fleet import FaultLabel

WEEK_MS = 7 * 24 * HOUR_MS


@dataclass(slots=True)
class KindScore:
    labels: int = 0
    detected: int = 0
    detections: int = 0
    true_detections: int = 0
    false_alarms: int = 0
    leads_h: list[float] = field(default_factory=list)
    threshold_never_fired: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else 1.0

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else 1.0


@dataclass(slots=True)
class Report:
    """Everything the benchmark and ``docs/analytics.md`` print."""

    devices: int
    scored_device_weeks: float
    fault_free_device_weeks: float
    detections: int
    true_detections: int
    false_alarms: int
    labels: int
    detected_labels: int
    by_kind: dict[str, KindScore]
    gradual_leads_h: list[float]
    kind_correct: int
    unmatched: list[Detection] = field(default_factory=list)
    missed: list[FaultLabel] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else 1.0

    @property
    def recall(self) -> float:
        return self.detected_labels / self.labels if self.labels else 1.0

    @property
    def false_alarms_per_device_week(self) -> float:
        return self.false_alarms / self.fault_free_device_weeks if self.fault_free_device_weeks else 0.0

    @property
    def gradual_lead_hours_mean(self) -> float:
        return sum(self.gradual_leads_h) / len(self.gradual_leads_h) if self.gradual_leads_h else 0.0

    def flat(self) -> dict[str, float | int]:
        """Flat keys for ``python -m bench analytics`` (per-kind keys prefixed by the fault kind)."""
        out: dict[str, float | int] = {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "false_alarms_per_device_week": round(self.false_alarms_per_device_week, 4),
            "gradual_lead_hours_mean": round(self.gradual_lead_hours_mean, 2),
            "labels": self.labels,
            "detections": self.detections,
            "false_alarms": self.false_alarms,
            "fault_free_device_weeks": round(self.fault_free_device_weeks, 1),
            "kind_accuracy": round(self.kind_correct / self.true_detections, 4) if self.true_detections else 1.0,
        }
        for kind, score in sorted(self.by_kind.items()):
            out[f"{kind}_labels"] = score.labels
            out[f"{kind}_precision"] = round(score.precision, 4)
            out[f"{kind}_recall"] = round(score.recall, 4)
            out[f"{kind}_false_alarms"] = score.false_alarms
            if score.leads_h:
                out[f"{kind}_lead_hours_mean"] = round(sum(score.leads_h) / len(score.leads_h), 2)
                out[f"{kind}_lead_hours_min"] = round(min(score.leads_h), 2)
            if score.threshold_never_fired:
                out[f"{kind}_threshold_never_fired"] = score.threshold_never_fired
        return out


def evaluate(
    labels: Sequence[FaultLabel],
    detections: Iterable[Detection],
    *,
    scored: dict[str, tuple[int, int]],
    grace_ms: int = 12 * HOUR_MS,
) -> Report:
    """Score ``detections`` against ``labels``; ``scored`` = device → ``[start_ms, end_ms)`` scored.

    Only detections and labels inside each device's scored window count (labels of a device not
    scored are ignored, so a partial run is scored fairly).
    """
    by_device: dict[str, list[FaultLabel]] = defaultdict(list)
    used_labels = [lb for lb in labels if lb.device in scored and lb.start_ms < scored[lb.device][1]]
    for label in used_labels:
        by_device[label.device].append(label)

    by_kind: dict[str, KindScore] = defaultdict(KindScore)
    first_hit: dict[int, Detection] = {}
    label_index = {id(lb): i for i, lb in enumerate(used_labels)}
    report = Report(devices=len(scored), scored_device_weeks=0.0, fault_free_device_weeks=0.0, detections=0,
                    true_detections=0, false_alarms=0, labels=len(used_labels), detected_labels=0,
                    by_kind=by_kind, gradual_leads_h=[], kind_correct=0)

    for label in used_labels:
        by_kind[label.fault].labels += 1

    for det in sorted(detections, key=lambda d: d.detected_ms):
        window = scored.get(det.device)
        if window is None or not window[0] <= det.detected_ms < window[1]:
            continue
        report.detections += 1
        match = None
        for label in by_device.get(det.device, ()):
            if label.start_ms <= det.detected_ms <= label.end_ms + grace_ms:
                match = label
                break
        if match is None:
            report.unmatched.append(det)
            by_kind[det.fault].detections += 1
            if not _in_any_label(by_device.get(det.device, ()), det.detected_ms, grace_ms):
                report.false_alarms += 1
                by_kind[det.fault].false_alarms += 1
            continue
        report.true_detections += 1
        score = by_kind[match.fault]
        score.detections += 1
        score.true_detections += 1
        if det.fault == match.fault:
            report.kind_correct += 1
        index = label_index[id(match)]
        if index not in first_hit:
            first_hit[index] = det

    for index, label in enumerate(used_labels):
        score = by_kind[label.fault]
        hit = first_hit.get(index)
        if hit is None:
            report.missed.append(label)
            continue
        score.detected += 1
        report.detected_labels += 1
        if label.gradual:
            if label.threshold_ms is None:
                score.threshold_never_fired += 1
            else:
                lead = (label.threshold_ms - hit.detected_ms) / HOUR_MS
                score.leads_h.append(lead)
                report.gradual_leads_h.append(lead)

    for device, (start, end) in scored.items():
        span = max(0, end - start)
        report.scored_device_weeks += span / WEEK_MS
        busy = _covered(by_device.get(device, ()), start, end, grace_ms)
        report.fault_free_device_weeks += (span - busy) / WEEK_MS
    return report


def _in_any_label(labels: Iterable[FaultLabel], at_ms: int, grace_ms: int) -> bool:
    return any(lb.start_ms <= at_ms <= lb.end_ms + grace_ms for lb in labels)


def _covered(labels: Iterable[FaultLabel], start: int, end: int, grace_ms: int) -> int:
    spans = sorted((max(start, lb.start_ms), min(end, lb.end_ms + grace_ms)) for lb in labels)
    total = 0
    cursor = start
    for low, hi in spans:
        lo = max(low, cursor)
        if hi > lo:
            total += hi - lo
            cursor = hi
    return total


def render_table(report: Report) -> str:
    """The evaluation as a Markdown table (``docs/analytics.md`` and ``evaluate`` output)."""
    lines = [
        "| fault kind | labels | detected | recall | precision | false alarms | mean lead (h) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, score in sorted(report.by_kind.items()):
        lead = f"{sum(score.leads_h) / len(score.leads_h):.1f}" if score.leads_h else "–"
        lines.append(f"| {kind} | {score.labels} | {score.detected} | {score.recall:.3f} | {score.precision:.3f} | "
                     f"{score.false_alarms} | {lead} |")
    lines.append(f"| **overall** | {report.labels} | {report.detected_labels} | {report.recall:.3f} | "
                 f"{report.precision:.3f} | {report.false_alarms} | {report.gradual_lead_hours_mean:.1f} |")
    lines.append("")
    never = {k: s.threshold_never_fired for k, s in sorted(report.by_kind.items()) if s.threshold_never_fired}
    if never:
        lines.append("Gradual faults detected whose hard threshold had not fired by the end of the run (no lead "
                     "counted, the lead is at least the rest of the run): "
                     + ", ".join(f"{k} {n}" for k, n in never.items()) + ".")
        lines.append("")
    lines.append(f"{report.devices} devices, {report.scored_device_weeks:.1f} device-weeks scored "
                 f"({report.fault_free_device_weeks:.1f} fault-free): "
                 f"{report.false_alarms_per_device_week:.3f} false alarms per fault-free device-week.")
    return "\n".join(lines)
