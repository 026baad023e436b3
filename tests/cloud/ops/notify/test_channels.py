"""Messenger channel URLs are checked when added: the vendors' pasted addresses and apprise's
spellings normalise to ours, ``wxwork://`` and typos are refused with the spelling that works."""

from __future__ import annotations

import psycopg
import pytest

from cloud.ops.model.errors import InvalidRequest
from cloud.ops.notify.channels import AppriseChannel, RobotChannel, normalise_channels, parse_channel

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
TOKEN = "a" * 64
SEC = "SEC" + "0f" * 32


@pytest.mark.parametrize(("url", "expected"), [
    (f"wecom://{KEY}", RobotChannel("wecom", KEY)),
    (f"wecombot://{KEY}", RobotChannel("wecom", KEY)),
    (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}", RobotChannel("wecom", KEY)),
    (f"dingtalk://{TOKEN}?secret={SEC}", RobotChannel("dingtalk", TOKEN, SEC)),
    (f"dingtalk://{SEC}@{TOKEN}", RobotChannel("dingtalk", TOKEN, SEC)),  # apprise's spelling
    (f"dingtalk://{TOKEN}", RobotChannel("dingtalk", TOKEN)),
    (f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", RobotChannel("dingtalk", TOKEN)),
    ("feishu://5e3d587e-d78e-4a07-bd07-265f269f86fd?secret=nIMtb7r3N9pkXyXdtAbx6e",
     RobotChannel("feishu", "5e3d587e-d78e-4a07-bd07-265f269f86fd", "nIMtb7r3N9pkXyXdtAbx6e")),
    ("https://open.feishu.cn/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07-265f269f86fd",
     RobotChannel("feishu", "5e3d587e-d78e-4a07-bd07-265f269f86fd")),
    ("json://127.0.0.1:8080/hook", AppriseChannel("json://127.0.0.1:8080/hook")),
    ("tgram://123456789:abcdefg_hijklmnop/12345", AppriseChannel("tgram://123456789:abcdefg_hijklmnop/12345")),
])
def test_accepted_spellings(url: str, expected: object) -> None:
    assert parse_channel(url) == expected


def test_canonical_form_round_trips() -> None:
    canonical = normalise_channels([f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&secret={SEC}",
                                    f"dingtalk://{SEC}@{TOKEN}", f"wecombot://{KEY}"])
    assert canonical == [f"dingtalk://{TOKEN}?secret={SEC}", f"wecom://{KEY}"]  # duplicates folded
    assert [parse_channel(u).url for u in canonical] == canonical


@pytest.mark.parametrize(("url", "says"), [
    (f"wxwork://{KEY}", "write wecom://<key>"),
    ("wecom://short", "WeCom robot key must be 8-128"),
    (f"dingtalk://{TOKEN}?secret=nosecprefix", "starting with SEC"),
    ("lark://abcdefgh1234", "Lark"),
    ("https://example.com/hook", "register it with webhook-add"),
    ("nosuchservice://x/y", "does not accept this nosuchservice://"),
    ("just text", "no scheme"),
])
def test_refused_with_a_reason(url: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_channel(url)
    assert says in str(err.value)
    assert "wecom://<key>" in str(err.value)  # every refusal shows what is valid


def test_webhook_admin_refuses_non_http(wo_db: str) -> None:
    from cloud.ops.workorders.admin import add_webhook

    with psycopg.connect(wo_db, autocommit=True) as conn:
        with pytest.raises(InvalidRequest, match="--messenger"):
            add_webhook(conn, f"wecom://{KEY}", "k")
        with pytest.raises(InvalidRequest, match="secret"):
            add_webhook(conn, "https://hooks.example.com/x", "")
        assert add_webhook(conn, "https://hooks.example.com/x", "k") > 0
