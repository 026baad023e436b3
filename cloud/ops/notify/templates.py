"""Every outbound message's words, in one table: Chinese and English per message code, rendered
per channel, with times in the community's zone.

Why one table in ``notify`` (the lowest ops layer that sends): the resident's phone page, the
SSE stream, the butler's messenger group, an SMS and an email all say the same thing, so the
sentence is written once here and each front-end asks for it (``cloud.http.residents`` renders
the resident's inbox from it; the outbox renders the channel copies). Rows are stored as a code
and parameters wherever the reader's language is not known at write time (the resident inbox),
and rendered at send time in the recipient's language where it is (a channel message).

Per channel, the same code becomes:

* ``markdown`` — WeCom / DingTalk / Feishu robots: a bold title line and ``- label: value`` lines;
* ``sms`` — one short plain line (Aliyun templates hold it in a 35-character variable, so the
  parameters are the template's ``${title}``; :func:`sms_params`);
* ``email`` — a subject and a plain body of labelled lines;
* ``text`` — the sentence alone (the in-app inbox, apprise messengers).

Chinese is the default (:data:`DEFAULT_LANG`); times are ``MM-DD HH:MM`` in the community's IANA
zone (Asia/Shanghai when unknown).

A community may word a message its own way (issue 18): a :class:`Wording` holds its overrides per
code, language and channel format (or ``*`` for every channel), written and checked by
:mod:`cloud.ops.notify.wording`; :func:`text` and :func:`render` use an override when one is given
and the shipped sentence otherwise. Only message codes (:func:`overridable`) can be overridden, and
an override may use only the placeholders the shipped sentence has (:func:`check_template`), so a
send can never fail on a missing value.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Lang = Literal["zh", "en"]
Format = Literal["text", "markdown", "sms", "email"]
#: what an override applies to: one channel format, or ``*`` for all of them
Channel = Literal["*", "text", "markdown", "sms", "email"]

DEFAULT_LANG: Final[Lang] = "zh"
DEFAULT_TZ: Final = "Asia/Shanghai"
SMS_MAX: Final = 35  # characters an Aliyun template variable may hold

#: code → (Chinese, English). ``{name}`` placeholders are filled from the message's parameters.
TEXTS: Final[dict[str, tuple[str, str]]] = {
    # --- a resident's order, step by step (inbox, SSE, the resident's channel) -------------------
    "resident.received": ("已收到您的报修：工单 #{id}（{title}）。",
        "We received your report: work order #{id} ({title})."),
    "resident.assigned": ("工单 #{id} 已派给 {butler}。", "Work order #{id} is assigned to {butler}."),
    "resident.on_the_way": ("{butler} 正在赶来（#{id}）。", "{butler} is on the way (#{id})."),
    "resident.on_site": ("{butler} 已到达现场（#{id}）。", "{butler} has arrived (#{id})."),
    "resident.resolved": ("工单 #{id} 已处理完成，请您评价。", "Work order #{id} is resolved. Please rate the repair."),
    "resident.closed": ("工单 #{id} 已关闭，感谢您的支持。", "Work order #{id} is closed. Thank you."),
    "resident.reopened": ("工单 #{id} 已重新打开，我们会继续处理。",
        "Work order #{id} is reopened; we are on it again."),
    "resident.cancelled": ("工单 #{id} 已取消。", "Work order #{id} was cancelled."),
    "resident.staff": ("工作人员", "our staff"),
    "resident.line": ("{text}", "{text}"),
    "resident.subject": ("【管家】工单 #{id} 进度", "[Guanjia] Work order #{id} progress"),
    # --- a resident's complaint ---------------------------------------------------------------
    "complaint.filed": ("已收到您的投诉 #{id}（{grade}），我们承诺 {handle_by} 前处理。",
                        "We received your complaint #{id} ({grade}); we will handle it by {handle_by}."),
    "complaint.investigate": ("投诉 #{id} 正在调查中。", "Complaint #{id} is being investigated."),
    "complaint.handle": ("投诉 #{id} 已处理完毕，我们会尽快向您反馈结果。",
                         "Complaint #{id} is handled; we will tell you the outcome shortly."),
    "complaint.feedback": ("投诉 #{id} 的处理结果：{note}　请告诉我们您是否满意。",
                           "Complaint #{id}: {note} Please tell us whether you are satisfied."),
    "complaint.close": ("投诉 #{id} 已关闭。", "Complaint #{id} is closed."),
    "complaint.resident_satisfied": ("感谢您的确认，投诉 #{id} 已关闭。", "Thank you; complaint #{id} is closed."),
    "complaint.resident_unsatisfied": ("收到您的意见，投诉 #{id} 将重新调查。",
                                       "Noted; complaint #{id} will be investigated again."),
    "complaint.subject": ("【管家】投诉 #{id} 进度", "[Guanjia] Complaint #{id} progress"),
    "complaint.state.received": ("已受理", "Received"), "complaint.state.investigating": ("调查中", "Investigating"),
    "complaint.state.handled": ("已处理", "Handled"), "complaint.state.feedback": ("已反馈", "Feedback given"),
    "complaint.state.closed": ("已关闭", "Closed"),
    "grade.serious": ("重大", "serious"), "grade.general": ("一般", "general"), "grade.minor": ("轻微", "minor"),
    "complaint.missed_handled": ("【{grade}】投诉 #{id} 未按承诺时间处理，已升级至第 {level} 级",
                                 "[{grade}] complaint #{id} not handled in time, escalated to level {level}"),
    "complaint.missed_closed": ("【{grade}】投诉 #{id} 未按承诺时间办结，已升级至第 {level} 级",
                                "[{grade}] complaint #{id} not closed in time, escalated to level {level}"),
    "complaint.escalated": ("投诉 #{id} 未按承诺时间处理，已升级。",
        "Complaint #{id} missed its commitment and was escalated."),
    # --- work orders, to butlers ------------------------------------------------------------------
    "work_order.assigned": ("新工单 #{id}：{title}", "New work order #{id}: {title}"),
    "work_order.escalated": ("工单 #{id} 已升级：{title}", "Work order #{id} escalated: {title}"),
    "work_order.reminder": ("工单 #{id} 提醒：{title}", "Reminder, work order #{id}: {title}"),
    "work_order.report_linked": ("工单 #{id} 有新的业主报修：{title}",
        "New resident report on work order #{id}: {title}"),
    "work_order.opened": ("工单 #{id} 已创建：{title}", "Work order #{id} opened: {title}"),
    "work_order.other": ("工单 #{id}：{title}", "Work order #{id}: {title}"),
    # --- labels of the detail lines ----------------------------------------------------------------
    "label.priority": ("优先级", "Priority"),
    "label.where": ("地点", "Where"),
    "label.state": ("状态", "State"),
    "label.accept_by": ("接单时限", "Accept by"),
    "label.on_site_by": ("到场时限", "On site by"),
    "label.reporter": ("报修人", "Reporter"),
    "label.details": ("描述", "Details"),
    "label.time": ("时间", "Time"),
    "label.escalation": ("升级", "Escalation"),
    "escalation.level": ("第 {level} 级", "level {level}"),
    "escalation.line": ("第 {level} 级：{reason}", "level {level}: {reason}"),
    "reason.not accepted in time": ("未按时接单", "not accepted in time"),
    "reason.nobody on site in time": ("未按时到场", "nobody on site in time"),
    "reason.not resolved in time": ("未按时完成", "not resolved in time"),
    # --- work-order states (pages, messages, trail) --------------------------------------------
    "state.new": ("新建", "New"), "state.assigned": ("已派单", "Assigned"), "state.accepted": ("已接单", "Accepted"),
    "state.on_the_way": ("在途", "On the way"), "state.on_site": ("已到场", "On site"),
    "state.on_hold": ("挂起", "On hold"), "state.resolved": ("已完成", "Resolved"), "state.closed": ("已关闭",
        "Closed"),
    "state.rejected": ("已拒单", "Rejected"), "state.cancelled": ("已取消", "Cancelled"),
    # --- trail actions (work orders and alarms): readable, never the stored code -----------------
    "trail.opened": ("创建工单", "opened the order"),
    "trail.to": ("交给 {name}", "to {name}"),
    "trail.assign": ("派单", "assigned"),
    "trail.reassign": ("改派", "reassigned"),
    "trail.accept": ("接单", "accepted"),
    "trail.reject": ("拒单", "rejected"),
    "trail.depart": ("出发", "set off"),
    "trail.arrive": ("到达现场", "arrived on site"),
    "trail.hold": ("挂起", "put on hold"),
    "trail.resume": ("继续处理", "resumed"),
    "trail.resolve": ("处理完成", "resolved"),
    "trail.reopen": ("重新打开", "reopened"),
    "trail.close": ("关闭", "closed"),
    "trail.cancel": ("取消", "cancelled"),
    "trail.auto_close": ("自动关闭", "closed automatically"),
    "trail.escalated": ("升级", "escalated"),
    "trail.unroutable": ("无人可派", "found nobody to route to"),
    "trail.report_linked": ("关联业主报修", "linked a resident's report"),
    "trail.rated": ("业主评价", "rated the repair"),
    "trail.liked": ("为管家点赞", "liked the butler's work"),
    "trail.followed_up": ("开立跟进工单", "opened a follow-up order"),
    "trail.photo": ("上传照片", "added a photo"),
    "trail.planned": ("计划维保", "planned maintenance"),
    "trail.maintenance_submitted": ("提交维保记录", "submitted the maintenance record"),
    "trail.maintenance_confirmed": ("确认维保", "confirmed the maintenance"),
    "trail.device_affected": ("关联受影响设备", "noted an affected device"),
    "trail.alarm_reraised": ("告警再次触发", "alarm raised again"),
    "trail.alarm_severity": ("告警级别变化", "alarm severity changed"),
    "trail.alarm_reopened": ("告警重新激活", "alarm active again"),
    "trail.alarm_cleared": ("告警已恢复", "alarm cleared"),
    "trail.raised": ("告警触发", "raised"),
    "trail.updated": ("告警更新", "updated"),
    "trail.severity": ("级别变化", "severity changed"),
    "trail.cleared": ("告警恢复", "cleared"),
    "trail.reopened": ("告警重新激活", "active again"),
    "trail.acknowledged": ("确认告警", "acknowledged"),
    "trail.archived": ("归档", "archived"),
    "trail.filed": ("提交投诉", "filed the complaint"),
    "trail.investigate": ("开始调查", "started the investigation"),
    "trail.handle": ("处理完毕", "handled it"),
    "trail.feedback": ("向业主反馈", "told the resident"),
    "trail.resident_satisfied": ("业主满意", "the resident is satisfied"),
    "trail.resident_unsatisfied": ("业主不满意", "the resident is not satisfied"),
    "trail.held": ("暂缓通知（等待网关恢复）", "held (waiting for the gateway)"),
    "trail.inhibited": ("并入网关离线告警", "grouped under the gateway's offline alarm"),
    "trail.announced": ("宽限期后通知", "announced after the grace period"),
    "trail.promoted": ("升为独立告警", "promoted to its own alarm"),
    "trail.late": ("迟到的事件（仅记录）", "late event (recorded only)"),
    "trail.cleared_first": ("先收到恢复（已记录）", "clear before raise (remembered)"),
    "trail.ignored": ("重复恢复（忽略）", "repeated clear (ignored)"),
    # --- who did it, when it was not a person -----------------------------------------------------
    "actor.system": ("系统", "the system"),
    "actor.system.alarms": ("告警系统", "the alarm system"),
    "actor.system.routing": ("自动派单", "automatic routing"),
    "actor.system.escalation": ("超时升级", "escalation"),
    "actor.system.rating": ("业主评价", "the resident's rating"),
    "actor.system.maintenance": ("维保计划", "the maintenance plan"),
    "actor.system.uplink": ("网关上报", "the gateway uplink"),
    "actor.system.offline-watchdog": ("离线监测", "the offline watchdog"),
    "actor.system.fleet": ("云端规则", "fleet rules"),
    "actor.edge": ("网关 {name}", "gateway {name}"),
    "actor.fleet": ("云端规则", "fleet rules"),
    "actor.resident": ("业主", "a resident"),
    "actor.unknown": ("用户 #{id}", "user #{id}"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message for one channel: ``subject`` (email, robots' title), ``body`` and, for SMS, the
    parameters of the provider's template."""

    subject: str
    body: str
    sms_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wording:
    """A community's own words: (code, language, channel format or ``*``) → template."""

    overrides: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def template(self, code: str, lang: str | None, fmt: Format) -> str | None:
        language = lang_of(lang)
        return self.overrides.get((code, language, fmt)) or self.overrides.get((code, language, "*"))


SHIPPED: Final = Wording()
_OVERRIDABLE: Final = ("resident.", "complaint.", "work_order.")


def overridable(code: str) -> bool:
    """Whether a community may word ``code`` its own way: the messages people receive (a
    resident's steps, complaints, butlers' work orders), not labels, states or trail words."""
    return code in TEXTS and code.startswith(_OVERRIDABLE) and not code.startswith("complaint.state.")


def placeholders(code: str) -> frozenset[str]:
    """The ``{name}`` placeholders the shipped sentence of ``code`` uses (either language)."""
    return frozenset(name for template in TEXTS.get(code, ()) for _lit, name, _spec, _conv
                     in string.Formatter().parse(template) if name)


def check_template(code: str, template: str) -> None:
    """Raise ``ValueError`` saying what is wrong when ``template`` cannot stand in for ``code``:
    an unknown code, unbalanced braces, or a placeholder the message does not have (a plain
    ``{name}`` only: no index, attribute, conversion or format spec, which could fail at send)."""
    if not overridable(code):
        raise ValueError(f"{code!r} is not a message that can be reworded")
    known = placeholders(code)
    allowed = ", ".join(f"{{{name}}}" for name in sorted(known)) or "none"
    try:
        fields = [(name, spec, conv) for _lit, name, spec, conv in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise ValueError(f"unbalanced braces ({exc}); write {{{{ and }}}} for a literal brace") from exc
    for name, spec, conv in fields:
        if name not in known:
            shown = f"{{{name}}}" if name else "{}"
            raise ValueError(f"unknown placeholder {shown}; {code} has {allowed}")
        if spec or conv:
            raise ValueError(f"write the placeholder as {{{name}}}, without a format or conversion")


def lang_of(value: str | None) -> Lang:
    """The recipient's language: ``en`` when they chose it, Chinese otherwise."""
    return "en" if value == "en" else "zh"


def has(code: str) -> bool:
    return code in TEXTS


def text(code: str, lang: str | None = None, /, *, fmt: Format = "text", words: Wording = SHIPPED,
         **params: object) -> str:
    """The sentence of ``code`` in ``lang`` (Chinese by default), in the community's ``words`` for
    channel ``fmt`` when it has its own; an unknown code is returned as is, so a new action shows
    its code rather than failing a page."""
    pair = TEXTS.get(code)
    if pair is None:
        return code
    template = words.template(code, lang, fmt) or (pair[1] if lang_of(lang) == "en" else pair[0])
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


@functools.cache
def zone(tz: str | None) -> tzinfo:
    try:
        return ZoneInfo(tz or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def local(moment: datetime | None, tz: str | None = None) -> str:
    """``MM-DD HH:MM`` in the community's zone (what every channel and page shows)."""
    return moment.astimezone(zone(tz)).strftime("%m-%d %H:%M") if moment is not None else ""


def sms_text(sentence: str) -> str:
    """Short enough for one Aliyun template variable."""
    return sentence if len(sentence) <= SMS_MAX else sentence[: SMS_MAX - 1] + "…"


def render(code: str, lang: str | None, fmt: Format, params: dict[str, object],
           lines: list[tuple[str, str]] | None = None, words: Wording = SHIPPED) -> Rendered:
    """``code``'s sentence as a message for ``fmt``; ``lines`` are (label code, value) detail
    lines (already localised values), shown by markdown and email, left out of SMS."""
    head = text(code, lang, fmt=fmt, words=words, **params)
    details = [(text(label, lang), value) for label, value in (lines or []) if value]
    if fmt == "sms":
        short = sms_text(head)
        return Rendered(short, short, {"title": short})
    if fmt == "markdown":
        body = "\n".join([f"**{head}**", *(f"- {label}：{value}" if lang_of(lang) == "zh" else
                                          f"- {label}: {value}" for label, value in details)])
        return Rendered(head, body)
    if fmt == "email":
        sep = "：" if lang_of(lang) == "zh" else ": "
        return Rendered(head, "\n".join([head, "", *(f"{label}{sep}{value}" for label, value in details)]).rstrip())
    return Rendered(head, head)
