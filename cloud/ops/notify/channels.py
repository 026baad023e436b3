"""Messenger channel URLs: parsed and checked when a butler's channel is *added*, not when the
first alarm fails to reach them.

A butler's ``messengers`` column holds one URL per group robot::

    wecom://<key>                          WeCom (企业微信) group robot; also the pasted
                                           https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<key>
    dingtalk://<access_token>?secret=SEC…  DingTalk (钉钉) robot with 加签; also the pasted
                                           https://oapi.dingtalk.com/robot/send?access_token=<token>
    feishu://<hook id>?secret=…            Feishu (飞书) custom bot with 签名校验; also the pasted
                                           https://open.feishu.cn/open-apis/bot/v2/hook/<hook id>
    any other apprise URL                  (telegram://, json://, …) handed to apprise as is

The three Chinese robots are sent by our own adapters (:mod:`cloud.ops.delivery.robots`), so their
URLs are ours; apprise's names differ (``wecombot://``, ``dingtalk://secret@token``) and are
accepted too and normalised. ``wxwork://`` — what our docs used to say — is not a scheme of the
installed apprise (2.x knows ``wecombot://``) and is refused with the spelling that works.

Parsing lives in ``notify`` (below ``workorders``) because the butler admin validates here and the
sender (in ``delivery``) dispatches on the same parsed value: one parser, no drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cloud.ops.model.errors import InvalidRequest

RobotKind = Literal["wecom", "dingtalk", "feishu"]

_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{8,128}")
_SECRET: Final = re.compile(r"[\x21-\x7e]{8,256}")

WECOM_HOST: Final = "qyapi.weixin.qq.com"
DINGTALK_HOST: Final = "oapi.dingtalk.com"
FEISHU_HOST: Final = "open.feishu.cn"

_EXAMPLES: Final = ("wecom://<key>, dingtalk://<access_token>?secret=SEC…, feishu://<hook id>?secret=…, "
                    "or another apprise URL (telegram://…, json://…)")


@dataclass(frozen=True, slots=True)
class RobotChannel:
    """A WeCom / DingTalk / Feishu group robot: ``token`` is the WeCom key, the DingTalk
    access_token or the Feishu hook id; ``secret`` the signing secret (WeCom robots have none)."""

    kind: RobotKind
    token: str
    secret: str | None = None

    @property
    def url(self) -> str:
        """The canonical form stored in ``butlers.messengers``."""
        query = f"?secret={quote(self.secret, safe='')}" if self.secret else ""
        return f"{self.kind}://{self.token}{query}"


@dataclass(frozen=True, slots=True)
class AppriseChannel:
    """Any other messenger apprise understands, sent through apprise unchanged."""

    url: str


Channel = RobotChannel | AppriseChannel


def _invalid(url: str, why: str) -> InvalidRequest:
    shown = url if len(url) <= 80 else url[:77] + "…"
    return InvalidRequest(f"messenger URL {shown!r}: {why}; valid: {_EXAMPLES}")


def _token(url: str, value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise _invalid(url, f"{what} must be 8-128 letters, digits, '-' or '_', got {value!r}")
    return value


def _secret(url: str, value: str | None, required_prefix: str = "") -> str | None:
    if value is None or value == "":
        return None
    if not _SECRET.fullmatch(value) or not value.startswith(required_prefix):
        hint = f" starting with {required_prefix}" if required_prefix else ""
        raise _invalid(url, f"the signing secret must be 8-256 printable ASCII characters{hint}")
    return value


def parse_channel(url: str) -> Channel:
    """Parse and check one messenger URL; raise :class:`InvalidRequest` saying what would be valid."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not scheme:
        raise _invalid(url, "no scheme")
    if scheme == "wxwork":
        raise _invalid(url, "wxwork:// is not a scheme apprise knows (it names the WeCom robot wecombot://); "
                            "write wecom://<key> with the key of the robot's webhook address")
    if scheme in ("wecom", "wecombot"):
        return RobotChannel("wecom", _token(url, unquote(parts.netloc), "the WeCom robot key"))
    if scheme == "dingtalk":
        # ours: dingtalk://token?secret=…; apprise's: dingtalk://secret@token
        token = unquote(parts.netloc.rpartition("@")[2])
        secret = query.get("secret") or (unquote(parts.username) if parts.username else None)
        return RobotChannel("dingtalk", _token(url, token, "the DingTalk access_token"),
                            _secret(url, secret, "SEC"))
    if scheme in ("feishu", "lark"):
        if scheme == "lark":
            raise _invalid(url, "Lark (international) robots are not supported; Feishu (open.feishu.cn) is")
        return RobotChannel("feishu", _token(url, unquote(parts.netloc), "the Feishu hook id"),
                            _secret(url, query.get("secret")))
    if scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        if host == WECOM_HOST and parts.path.rstrip("/") == "/cgi-bin/webhook/send":
            return RobotChannel("wecom", _token(url, query.get("key", ""), "the WeCom robot key"))
        if host == DINGTALK_HOST and parts.path.rstrip("/") == "/robot/send":
            return RobotChannel("dingtalk", _token(url, query.get("access_token", ""), "the DingTalk access_token"),
                                _secret(url, query.get("secret"), "SEC"))
        if host == FEISHU_HOST and parts.path.startswith("/open-apis/bot/v2/hook/"):
            hook = parts.path.removeprefix("/open-apis/bot/v2/hook/").strip("/")
            return RobotChannel("feishu", _token(url, hook, "the Feishu hook id"), _secret(url, query.get("secret")))
        raise _invalid(url, "a plain http(s) address is a webhook, not a messenger: register it with webhook-add")
    import apprise  # only for the schemes we do not send ourselves

    if not apprise.Apprise().add(url):
        raise _invalid(url, f"apprise {apprise.__version__} does not accept this {scheme}:// URL")
    return AppriseChannel(url)


def normalise_channels(urls: list[str]) -> list[str]:
    """The canonical URLs to store for a butler, or :class:`InvalidRequest` on the first bad one."""
    out: list[str] = []
    for url in urls:
        channel = parse_channel(url)
        canonical = channel.url
        if canonical not in out:
            out.append(canonical)
    return out


def is_robot(url: str) -> bool:
    """Whether ``url`` is one of the group robots we send ourselves (they get markdown)."""
    try:
        return isinstance(parse_channel(url), RobotChannel)
    except InvalidRequest:
        return False
