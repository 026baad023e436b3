"""Chinese and English message catalogs and the choice of language per request.

Why plain dicts and not gettext: the pages have a few hundred short strings, reviewers of both
languages read this one file, and a missing key shows the key itself (never a crash). The choice:
``?lang=`` (remembered in a cookie) → the ``lang`` cookie → the user's preference → the
browser's ``Accept-Language`` → Chinese, the default of the demo community.
"""

from __future__ import annotations

from fastapi import Request

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_COOKIE = "guanjia_lang"

_EN: dict[str, str] = {
    "app.title": "Guanjia property IoT",
    "nav.fleet": "Fleet", "nav.gateways": "Gateways", "nav.inbox": "My work orders",
    "nav.resident": "Report & rate", "nav.manager": "Performance", "nav.logout": "Log out",
    "nav.users": "Users",
    "login.title": "Sign in", "login.username": "Username", "login.password": "Password",
    "login.submit": "Sign in", "login.failed": "Wrong username or password.",
    "login.throttled": "Too many attempts. Try again in {s} seconds.",
    "common.community": "Community", "common.building": "Building", "common.floor": "Floor",
    "common.kind": "Kind", "common.state": "State", "common.search": "Search",
    "common.all": "All", "common.device": "Device", "common.gateway": "Gateway",
    "common.last_seen": "Last seen", "common.never": "never", "common.none": "None",
    "common.apply": "Apply", "common.save": "Save", "common.note": "Note", "common.photo": "Photo",
    "common.time": "Time", "common.value": "Value", "common.metric": "Metric", "common.range": "Range",
    "common.severity": "Severity", "common.message": "Message", "common.priority": "Priority",
    "common.title": "Title", "common.created": "Created", "common.due": "Due", "common.count": "Count",
    "common.devices": "Devices", "common.back": "Back", "common.location": "Location",
    "state.online": "Online", "state.offline": "Offline", "state.alarming": "Alarming",
    "state.maintenance": "In maintenance", "state.unknown": "No data",
    "kind.elevator": "Elevator", "kind.pump": "Water pump", "kind.gate": "Access gate",
    "kind.meter": "Energy meter", "kind.unknown": "Unknown",
    "fleet.title": "Fleet overview", "fleet.summary": "{n} devices: {online} online, {alarming} alarming, "
    "{maintenance} in maintenance, {offline} offline",
    "fleet.map": "Map", "fleet.floors": "Building floors", "fleet.no_devices": "No devices match.",
    "device.title": "Device", "device.live": "Live values", "device.chart": "Chart",
    "device.alarms": "Alarms", "device.workorders": "Work orders", "device.health": "Equipment health record",
    "device.waiting": "waiting for data…", "device.no_alarms": "No alarms.", "device.no_wos": "No work orders.",
    "device.total": "Total", "device.last_24h": "Last 24 h", "device.last_30d": "Last 30 days",
    "device.no_counters": "This device reports no counters yet.",
    "device.commands": "Remote commands", "device.command_point": "Point", "device.command_value": "Value",
    "device.command_send": "Send", "device.command_none": "No commands yet.",
    "device.command_no_points": "The cloud knows no writable points of this device "
                                "(its profile is not in the library).",
    "device.command_by": "By", "device.command_result": "Result", "device.command_what": "Command",
    "device.command_sent": "Command {id} queued; it is sent as soon as the gateway is online.",
    "cmd.rejected": "Refused by the cloud", "cmd.pending": "Waiting for the gateway",
    "cmd.sent": "Sent, awaiting reply",
    "cmd.done": "Done", "cmd.refused": "Refused by the edge", "cmd.timed_out": "No reply (timed out)",
    "cmd.expired": "Expired unsent (gateway offline)", "cmd.late_reply": "reply came late",
    "device.per_24h": "+{n} in 24 h", "device.chart_states": "States",
    "gateway.summary": "At a glance", "gateway.uplink_lag": "Uplink lag", "gateway.outbox": "Outbox depth",
    "gateway.lateness_p99": "Poll lateness p99", "gateway.devices_offline": "Devices offline",
    "gateway.errors_1h": "Errors, last hour", "gateway.agent": "Agent version", "gateway.config": "Config version",
    "gateway.details": "Details: every reported figure", "gateway.online": "Online",
    "audit.title": "Audit log", "audit.actor": "Who", "audit.action": "Change", "audit.target": "What",
    "audit.empty": "No administrative changes yet.", "audit.gateway.token_issued": "Enrolment token issued",
    "audit.gateway.enrolled": "Gateway enrolled", "audit.gateway.revoked": "Credentials revoked",
    "audit.devices.imported": "Devices imported (CSV)", "audit.community.created": "Community created",
    "audit.community.updated": "Community changed", "audit.building.created": "Building created",
    "audit.building.updated": "Building changed",
    "gateway.credentials": "Broker credentials", "gateway.broker_user": "Broker account",
    "gateway.issued": "issued", "gateway.revoked": "revoked",
    "gateway.token_once": "One-time enrolment token (shown only now):", "gateway.token_expires": "expires",
    "gateway.new_token": "New enrolment token (enrol / rotate)", "gateway.revoke": "Revoke credentials",
    "gateway.notice_revoked": "Credentials revoked: the gateway can no longer connect.",
    "gateway.notice_broker_not_configured": "The broker's password and ACL files are not configured "
                                            "(GUANJIA_BROKER_PASSWD_FILE, GUANJIA_BROKER_ACL_FILE).",
    "gateway.notice_broker_unavailable": "The broker's files could not be changed; nothing was revoked.",
    "device.energy_baseline": "Energy use, last 7 days vs the 4 weeks before",
    "device.baseline_delta": "{pct}% against baseline",
    "range.1h": "1 hour", "range.24h": "24 hours", "range.7d": "7 days", "range.30d": "30 days",
    "range.365d": "1 year", "range.custom": "From … to …",
    "alarm.active": "active", "alarm.cleared": "cleared", "alarm.acked": "acknowledged", "alarm.ack": "Acknowledge",
    "alarm.inhibited": "inhibited (gateway offline)",
    "alarm.inhibited_title": "Grouped under the gateway's offline alarm #{id}: no work order or notification "
                             "of its own",
    "gateway.title": "Gateway", "gateway.list": "Gateways", "gateway.queue": "Queue depth",
    "gateway.latency": "Poll latency", "gateway.errors": "Errors", "gateway.seq": "Sequence high-water",
    "gateway.gaps": "Missing sequences", "gateway.received": "Batches received",
    "gateway.deadletters": "Dead letters (24 h)", "gateway.status": "Reported status",
    "gateway.incarnations": "Outbox incarnations", "gateway.incarnation": "Incarnation",
    "gateway.first_seen": "First seen", "gateway.quarantined": "Quarantined",
    "gateway.incarnations_note": "A new incarnation means the edge's outbox was wiped or replaced; its data is "
                                 "stored as usual, the older incarnation's gaps stay listed here.",
    "inbox.title": "My work orders", "inbox.empty": "No open work orders. 👍",
    "inbox.new": "New work order!", "inbox.respond_by": "Respond by", "inbox.on_site_by": "On site by",
    "inbox.resolve_by": "Resolve by", "inbox.overdue": "overdue", "inbox.trail": "Trail",
    "inbox.not_butler": "Your account is not linked to a butler record yet.",
    "inbox.live": "live", "inbox.offline": "reconnecting…",
    "inbox.gateway_offline": "Gateway {gateway} offline", "inbox.affected": "Affected devices ({n})",
    "inbox.affected_none": "Affected devices: none reported yet", "inbox.affected_active": "still failing",
    "inbox.affected_cleared": "recovered",
    "action.accept": "Accept", "action.depart": "On the way", "action.arrive": "On site",
    "action.resolve": "Resolved", "action.reject": "Reject", "action.hold": "On hold", "action.resume": "Resume",
    "wo.new": "New", "wo.assigned": "Assigned", "wo.accepted": "Accepted", "wo.on_the_way": "On the way",
    "wo.on_site": "On site", "wo.on_hold": "On hold", "wo.resolved": "Resolved", "wo.closed": "Closed",
    "wo.rejected": "Rejected", "wo.cancelled": "Cancelled",
    "checklist.due": "due", "checklist.reading": "Reading", "checklist.pass": "Pass", "checklist.fail": "Fail",
    "checklist.sign": "Maintainer's signature", "checklist.clear": "Clear", "checklist.submit": "Submit checklist",
    "checklist.submitted": "Submitted; waiting for the property staff's confirmation.",
    "nav.inspect": "Rounds", "inspect.title": "Inspection round", "inspect.code": "Checkpoint code",
    "inspect.camera": "Scan QR code",
    "inspect.reading": "Reading (if asked)", "inspect.note": "Note", "inspect.finding": "Finding: open a work order",
    "inspect.submit": "Record visit", "inspect.done": "Checkpoint {code} recorded.",
    "inspect.wo": "Work order #{id} opened.", "inspect.none": "No inspection route in your communities.",
    "inspect.community": "Community", "inspect.routes": "Routes", "inspect.every": "every {hours} h",
    "resident.title": "Report a fault", "resident.text": "What is wrong?", "resident.where": "Where?",
    "resident.submit": "Send report", "resident.sent": "Thank you — your report was sent (work order #{id}).",
    "resident.mine": "My reports", "resident.rate": "Rate the repair", "resident.stars": "Stars",
    "resident.comment": "Comment", "resident.rated": "Rated {stars}★", "resident.thanks": "Thank you for rating.",
    "resident.updates": "Progress", "resident.live": "live", "resident.offline": "reconnecting…",
    "resident.no_updates": "No news yet.",
    "resident.reopen": "Not fixed — reopen", "resident.reopen_reason": "What is still wrong?",
    "resident.reopened": "Reopened — work order #{id} carries on.",
    "manager.title": "Service performance", "manager.period": "Last {days} days",
    "manager.sla_respond": "Responded in time", "manager.sla_on_site": "On site in time",
    "manager.mttr_respond": "Mean time to respond", "manager.mttr_repair": "Mean time to repair",
    "manager.orders": "Orders", "manager.rating": "Mean rating", "manager.by_butler": "Per butler",
    "manager.by_community": "Per community", "manager.ratings": "Rating distribution",
    "manager.complaints": "Complaints", "manager.complaint_cycle": "Mean days filed → closed (benchmark {benchmark})",
    "manager.complaints_closed": "Closed", "manager.complaints_open": "Open",
    "manager.complaints_overdue": "Open past a commitment",
    "manager.butler": "Butler", "error.forbidden": "You may not open this page.",
    "error.not_found": "Not found.", "error.bad_request": "The request is not valid.",
    "error.unauthorized": "Please sign in.", "error.internal": "Something went wrong on our side.",
    "error.unavailable": "The database is unavailable. Please try again in a few seconds.",
    "minutes": "min", "hours": "h",
    "users.name": "Name", "users.role": "Role", "users.add": "Add user", "users.created": "User {name} created.",
    "users.disable": "Disable", "users.enable": "Enable",
    "role.admin": "Admin", "role.engineer": "Engineer", "role.butler": "Butler", "role.resident": "Resident",
}

_ZH: dict[str, str] = {
    "app.title": "管家 · 物业物联网",
    "nav.fleet": "设备总览", "nav.gateways": "网关", "nav.inbox": "我的工单",
    "nav.resident": "报事报修", "nav.manager": "服务绩效", "nav.logout": "退出", "nav.users": "用户",
    "login.title": "登录", "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "login.failed": "用户名或密码错误。", "login.throttled": "尝试次数过多，请 {s} 秒后再试。",
    "common.community": "小区", "common.building": "楼栋", "common.floor": "楼层", "common.kind": "类型",
    "common.state": "状态", "common.search": "搜索", "common.all": "全部", "common.device": "设备",
    "common.gateway": "网关", "common.last_seen": "最后在线", "common.never": "从未", "common.none": "无",
    "common.apply": "应用", "common.save": "保存", "common.note": "备注", "common.photo": "照片",
    "common.time": "时间", "common.value": "数值", "common.metric": "指标", "common.range": "范围",
    "common.severity": "级别", "common.message": "信息", "common.priority": "优先级", "common.title": "标题",
    "common.created": "创建时间", "common.due": "期限", "common.count": "数量", "common.devices": "设备",
    "common.back": "返回", "common.location": "位置",
    "state.online": "在线", "state.offline": "离线", "state.alarming": "告警中", "state.maintenance": "维修中",
    "state.unknown": "无数据",
    "kind.elevator": "电梯", "kind.pump": "水泵", "kind.gate": "门禁", "kind.meter": "电表", "kind.unknown": "未知",
    "fleet.title": "设备总览", "fleet.summary": "共 {n} 台设备：{online} 在线，{alarming} 告警，{maintenance} 维修中，"
    "{offline} 离线",
    "fleet.map": "地图", "fleet.floors": "楼层视图", "fleet.no_devices": "没有符合条件的设备。",
    "device.title": "设备", "device.live": "实时数据", "device.chart": "曲线", "device.alarms": "告警记录",
    "device.workorders": "工单记录", "device.health": "设备健康档案", "device.waiting": "等待数据…",
    "device.no_alarms": "无告警。", "device.no_wos": "无工单。", "device.total": "累计",
    "device.last_24h": "近 24 小时", "device.last_30d": "近 30 天", "device.no_counters": "该设备暂无计数数据。",
    "device.commands": "远程指令", "device.command_point": "点位", "device.command_value": "数值",
    "device.command_send": "下发", "device.command_none": "暂无指令。",
    "device.command_no_points": "云端不知道该设备的可写点位（其设备模型不在模型库中）。",
    "device.command_by": "操作人", "device.command_result": "结果", "device.command_what": "指令",
    "device.command_sent": "指令 {id} 已排队，网关在线后立即下发。",
    "cmd.rejected": "云端拒绝", "cmd.pending": "等待网关上线", "cmd.sent": "已下发，等待回执",
    "cmd.done": "已执行", "cmd.refused": "边缘端拒绝", "cmd.timed_out": "无回执（超时）",
    "cmd.expired": "已过期未下发（网关离线）", "cmd.late_reply": "回执迟到",
    "device.per_24h": "24 小时 +{n}", "device.chart_states": "状态",
    "gateway.summary": "概览", "gateway.uplink_lag": "上行延迟", "gateway.outbox": "待发缓存",
    "gateway.lateness_p99": "轮询滞后 p99", "gateway.devices_offline": "离线设备",
    "gateway.errors_1h": "近 1 小时错误", "gateway.agent": "网关程序版本", "gateway.config": "配置版本",
    "gateway.details": "详情：全部上报数据", "gateway.online": "在线",
    "audit.title": "操作审计", "audit.actor": "操作人", "audit.action": "操作", "audit.target": "对象",
    "audit.empty": "暂无管理操作。", "audit.gateway.token_issued": "签发接入令牌",
    "audit.gateway.enrolled": "网关接入", "audit.gateway.revoked": "吊销凭据",
    "audit.devices.imported": "批量导入设备（CSV）", "audit.community.created": "新建小区",
    "audit.community.updated": "修改小区", "audit.building.created": "新建楼栋", "audit.building.updated": "修改楼栋",
    "gateway.credentials": "接入凭据", "gateway.broker_user": "MQTT 账号",
    "gateway.issued": "签发于", "gateway.revoked": "已吊销于",
    "gateway.token_once": "一次性接入令牌（仅此一次显示）：", "gateway.token_expires": "有效期至",
    "gateway.new_token": "生成接入令牌（接入 / 轮换）", "gateway.revoke": "吊销凭据",
    "gateway.notice_revoked": "凭据已吊销：该网关无法再连接。",
    "gateway.notice_broker_not_configured": "未配置消息服务器的密码与 ACL 文件"
                                            "（GUANJIA_BROKER_PASSWD_FILE、GUANJIA_BROKER_ACL_FILE）。",
    "gateway.notice_broker_unavailable": "无法修改消息服务器文件，未吊销任何凭据。",
    "device.energy_baseline": "近 7 天能耗与前 4 周基线对比", "device.baseline_delta": "较基线 {pct}%",
    "range.1h": "1 小时", "range.24h": "24 小时", "range.7d": "7 天", "range.30d": "30 天", "range.365d": "1 年",
    "range.custom": "自定义",
    "alarm.active": "未恢复", "alarm.cleared": "已恢复", "alarm.acked": "已确认", "alarm.ack": "确认",
    "alarm.inhibited": "已抑制（网关离线）", "alarm.inhibited_title": "已归入网关离线告警 #{id}，不单独派单或通知",
    "gateway.title": "网关", "gateway.list": "网关列表", "gateway.queue": "队列深度", "gateway.latency": "轮询延迟",
    "gateway.errors": "错误", "gateway.seq": "序号高水位", "gateway.gaps": "缺失序号", "gateway.received": "已接收批次",
    "gateway.deadletters": "死信（24 小时）", "gateway.status": "上报状态",
    "gateway.incarnations": "缓存实例", "gateway.incarnation": "实例", "gateway.first_seen": "首次出现",
    "gateway.quarantined": "已隔离",
    "gateway.incarnations_note": "出现新实例说明网关本地缓存被清除或更换过；数据照常接收，旧实例的缺口保留在此。",
    "inbox.title": "我的工单", "inbox.empty": "暂无待办工单。👍", "inbox.new": "新工单！",
    "inbox.respond_by": "响应期限", "inbox.on_site_by": "到场期限", "inbox.resolve_by": "完成期限",
    "inbox.overdue": "已超时", "inbox.trail": "处理轨迹", "inbox.not_butler": "您的账号尚未关联管家档案。",
    "inbox.live": "实时", "inbox.offline": "重新连接中…",
    "inbox.gateway_offline": "网关 {gateway} 离线", "inbox.affected": "受影响设备（{n} 台）",
    "inbox.affected_none": "受影响设备：暂无上报", "inbox.affected_active": "仍异常",
    "inbox.affected_cleared": "已恢复",
    "action.accept": "接单", "action.depart": "出发", "action.arrive": "到场", "action.resolve": "完成",
    "action.reject": "拒单", "action.hold": "挂起", "action.resume": "继续",
    "wo.new": "新建", "wo.assigned": "已派单", "wo.accepted": "已接单", "wo.on_the_way": "在途", "wo.on_site": "已到场",
    "wo.on_hold": "挂起", "wo.resolved": "已完成", "wo.closed": "已关闭", "wo.rejected": "已拒单",
    "wo.cancelled": "已取消",
    "checklist.due": "到期", "checklist.reading": "读数", "checklist.pass": "合格", "checklist.fail": "不合格",
    "checklist.sign": "维保人签名", "checklist.clear": "清除", "checklist.submit": "提交检查表",
    "checklist.submitted": "已提交，等待物业确认。",
    "nav.inspect": "巡检", "inspect.title": "巡检", "inspect.code": "巡检点编码",
    "inspect.camera": "扫描二维码",
    "inspect.reading": "读数（如需）", "inspect.note": "备注", "inspect.finding": "发现问题：生成工单",
    "inspect.submit": "记录巡检", "inspect.done": "巡检点 {code} 已记录。",
    "inspect.wo": "已生成工单 #{id}。", "inspect.none": "您的小区还没有巡检路线。",
    "inspect.community": "小区", "inspect.routes": "巡检路线", "inspect.every": "每 {hours} 小时",
    "resident.title": "报事报修", "resident.text": "遇到了什么问题？", "resident.where": "具体位置",
    "resident.submit": "提交", "resident.sent": "感谢您的反馈，已生成工单 #{id}。", "resident.mine": "我的报修",
    "resident.rate": "评价维修", "resident.stars": "星级", "resident.comment": "评价内容",
    "resident.rated": "已评价 {stars}★", "resident.thanks": "感谢您的评价。",
    "resident.updates": "处理进度", "resident.live": "实时", "resident.offline": "重新连接中…",
    "resident.no_updates": "暂无消息。",
    "resident.reopen": "未修好，重新打开", "resident.reopen_reason": "还有什么问题？",
    "resident.reopened": "已重新打开，工单 #{id} 继续处理。",
    "manager.title": "服务绩效", "manager.period": "近 {days} 天", "manager.sla_respond": "按时响应率",
    "manager.sla_on_site": "按时到场率", "manager.mttr_respond": "平均响应时间", "manager.mttr_repair": "平均修复时间",
    "manager.orders": "工单数", "manager.rating": "平均评分", "manager.by_butler": "按管家",
    "manager.by_community": "按小区", "manager.ratings": "评分分布", "manager.butler": "管家",
    "manager.complaints": "投诉", "manager.complaint_cycle": "平均处理周期（天，行业标杆 {benchmark}）",
    "manager.complaints_closed": "已关闭", "manager.complaints_open": "处理中",
    "manager.complaints_overdue": "超出承诺时限",
    "error.forbidden": "您无权访问此页面。", "error.not_found": "未找到。", "error.bad_request": "请求无效。",
    "error.unauthorized": "请先登录。", "error.internal": "服务器出错了。",
    "error.unavailable": "数据库暂时不可用，请几秒后重试。", "minutes": "分钟", "hours": "小时",
    "users.name": "姓名", "users.role": "角色", "users.add": "新增用户", "users.created": "已创建用户 {name}。",
    "users.disable": "停用", "users.enable": "启用",
    "role.admin": "管理员", "role.engineer": "工程师", "role.butler": "管家", "role.resident": "业主",
}

# --- issue 18: residents' complaints and channel, volunteers' tasks and points (pages) ---------------
_EN.update({
    "complaints.title": "Complaints", "complaints.file": "File a complaint", "complaints.grade": "Grade",
    "complaints.text": "What happened?", "complaints.order": "About work order", "complaints.submit": "Send",
    "complaints.mine": "My complaints", "complaints.none": "No complaints.",
    "complaints.filed": "Complaint #{id} received.",
    "complaints.handle_by": "Handled by", "complaints.close_by": "Closed by", "complaints.progress": "Progress",
    "complaints.satisfied": "Satisfied", "complaints.unsatisfied": "Not satisfied",
    "complaints.reply_comment": "Anything to add?", "complaints.replied": "Thank you for your answer.",
    "complaints.link": "Complaints", "channel.title": "Also tell me by", "channel.inapp": "This page only",
    "channel.sms": "SMS", "channel.email": "Email", "channel.messenger": "Messenger (robot / apprise URL)",
    "channel.target": "Phone, address or URL", "channel.save": "Save", "channel.saved": "Saved.",
    "volunteer.title": "My points", "volunteer.balance": "Balance", "volunteer.ledger": "Ledger",
    "volunteer.redeem": "Request a redemption", "volunteer.points": "Points", "volunteer.service": "For",
    "volunteer.requested": "Request sent.", "volunteer.requests": "My requests",
    "volunteer.pending": "pending", "volunteer.approved": "approved", "volunteer.refused": "refused",
    "volunteer.handoff": "Hand to a volunteer", "volunteer.handed": "Handed to {name}.",
    "volunteer.none": "No volunteer in this community.", "volunteer.approve": "Approve", "volunteer.refuse": "Refuse",
    "volunteer.kind.task": "task", "volunteer.kind.adjust": "adjustment", "volunteer.kind.redeem": "redemption",
    "star.title": "Star level", "star.rule": "How the star level is computed",
    "star.explain": "Over the last {days} days: residents' ratings {rating} %, orders accepted in time {respond} %, "
                    "on site in time {on_site} %, residents' likes {likes} % (full at {likes_full}), years of "
                    "service {years} % (full at {years_full}), certifications {certs} % (full at {certs_full}). "
                    "A newcomer starts from 3 stars (3-star ratings, 70 % on time) until real results count; the "
                    "score 0–1 gives 1★ below 0.2 up to 5★ from 0.8. The weights are the property's policy.",
    "complaints.do.investigate": "Investigate", "complaints.do.handle": "Handled",
    "complaints.do.feedback": "Tell the resident", "complaints.do.close": "Close",
    "volunteer.requests_staff": "Volunteers' redemption requests",
    "resident.like": "Like", "resident.like_title": "Thank {butler} for the repair",
    "resident.liked": "Thank you — your like counts towards the butler's stars.",
})
_ZH.update({
    "complaints.title": "投诉", "complaints.file": "我要投诉", "complaints.grade": "等级",
    "complaints.text": "发生了什么？", "complaints.order": "相关工单", "complaints.submit": "提交",
    "complaints.mine": "我的投诉", "complaints.none": "暂无投诉。", "complaints.filed": "已收到投诉 #{id}。",
    "complaints.handle_by": "承诺处理时间", "complaints.close_by": "承诺办结时间", "complaints.progress": "处理进度",
    "complaints.satisfied": "满意", "complaints.unsatisfied": "不满意",
    "complaints.reply_comment": "还有什么想说的？", "complaints.replied": "感谢您的反馈。",
    "complaints.link": "投诉", "channel.title": "同时通知我", "channel.inapp": "仅本页面",
    "channel.sms": "短信", "channel.email": "邮件", "channel.messenger": "群机器人 / apprise 地址",
    "channel.target": "手机号、邮箱或地址", "channel.save": "保存", "channel.saved": "已保存。",
    "volunteer.title": "我的积分", "volunteer.balance": "积分余额", "volunteer.ledger": "积分明细",
    "volunteer.redeem": "申请兑换", "volunteer.points": "积分", "volunteer.service": "兑换服务",
    "volunteer.requested": "兑换申请已提交。", "volunteer.requests": "我的兑换申请",
    "volunteer.pending": "待审核", "volunteer.approved": "已通过", "volunteer.refused": "未通过",
    "volunteer.handoff": "转给志愿管家", "volunteer.handed": "已转给 {name}。",
    "volunteer.none": "本小区暂无志愿管家。", "volunteer.approve": "通过", "volunteer.refuse": "拒绝",
    "volunteer.kind.task": "任务", "volunteer.kind.adjust": "调整", "volunteer.kind.redeem": "兑换",
    "star.title": "星级", "star.rule": "星级如何计算",
    "star.explain": "按近 {days} 天计算：业主评分占 {rating}%，按时接单占 {respond}%，按时到场占 {on_site}%，"
                    "业主点赞占 {likes}%（{likes_full} 个赞为满分），服务年限占 {years}%（{years_full} 年为满分），"
                    "持证占 {certs}%（{certs_full} 个证书为满分）。新管家从 3 星起步（按 3 星评分、70% 准时计），"
                    "随真实记录逐步调整；得分 0–1，低于 0.2 为 1 星，0.8 及以上为 5 星。权重由物业在策略中配置。",
    "complaints.do.investigate": "开始调查", "complaints.do.handle": "处理完毕",
    "complaints.do.feedback": "反馈业主", "complaints.do.close": "关闭",
    "volunteer.requests_staff": "志愿管家积分兑换申请",
    "resident.like": "点赞", "resident.like_title": "感谢 {butler} 的服务",
    "resident.liked": "感谢点赞，这会计入管家的星级。",
})

CATALOGS: dict[str, dict[str, str]] = {"en": _EN, "zh": _ZH}


def translate(lang: str, key: str, **values: object) -> str:
    text = CATALOGS.get(lang, _ZH).get(key) or _EN.get(key) or key
    return text.format(**values) if values else text


def _from_accept_language(header: str) -> str | None:
    best: tuple[float, str] | None = None
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = tag.strip().lower()[:2]
        if code in LANGS and (best is None or quality > best[0]):
            best = (quality, code)
    return best[1] if best else None


def pick_lang(request: Request, user_lang: str | None = None) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return cookie
    if user_lang in LANGS:
        return user_lang
    return _from_accept_language(request.headers.get("accept-language", "")) or DEFAULT_LANG
