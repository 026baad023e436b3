"""Voice calls through a provider adapter: Aliyun Voice Service (语音服务, ``SingleCallByTts``).

The last resort of the P0 path: an emergency order (a call button pressed, passengers trapped)
that nobody accepted escalates by SMS *and* by a phone call to the next person up, because a
phone that rings is answered when an app notification and a text are not looked at. Configured by
one URL, ``GUANJIA_VOICE_URL``::

    aliyunvoice://<AccessKeyId>:<AccessKeySecret>@dyvmsapi.aliyuncs.com?show_number=057188880000&template=TTS_123
    aliyunvoice+http://…@127.0.0.1:8080?…     plain HTTP (a local receiver in tests, a private gateway)

The same RPC shape and signature as the SMS adapter (:mod:`cloud.ops.delivery.aliyun`), action
``SingleCallByTts`` of product Dyvmsapi (version 2017-05-25): ``CalledNumber`` (the butler's
mobile), ``CalledShowNumber`` (the number bought in the console that the callee sees),
``TtsCode`` (a text-to-speech template approved in the console, e.g. ``您有一条紧急工单：${title}，
请立即处理。``), ``TtsParam`` (its variables, JSON), ``PlayTimes`` (the message is read three times: a
person picking up mid-sentence still hears it whole) and ``OutId`` (our notification id, echoed in
Aliyun's call receipts). The answer is ``{"Code": "OK", "CallId": …}`` or an error code, treated
as for SMS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx
import orjson

from cloud.ops.delivery.aliyun import parse_rpc_url, rpc_get, signed_params
from cloud.ops.delivery.webhook import Outcome
from cloud.ops.notify.preferences import normalise_phone

DEFAULT_HOST: Final = "dyvmsapi.aliyuncs.com"
TITLE_MAX: Final = 20
"""A spoken variable is short: the priority and the place, not the whole subject."""
PLAY_TIMES: Final = 3


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    access_key_id: str
    access_key_secret: str
    show_number: str
    template: str
    endpoint: str = f"https://{DEFAULT_HOST}/"
    region: str = "cn-hangzhou"
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the secret in logs
        return f"VoiceConfig(aliyun, {self.endpoint}, key={self.access_key_id}, template={self.template})"

    @classmethod
    def parse(cls, url: str) -> VoiceConfig:
        found = parse_rpc_url(url, "Voice", "aliyunvoice", DEFAULT_HOST, ("show_number", "template"),
                              "show_number=…&template=TTS_…")
        return cls(found.key_id, found.secret, found.query["show_number"], found.query["template"], found.endpoint,
                   found.region)


def request_params(config: VoiceConfig, phone: str, title: str, out_id: str, now: datetime,
                   nonce: str) -> dict[str, str]:
    return signed_params("SingleCallByTts", config.access_key_id, config.access_key_secret, config.region, now,
                         nonce, CalledNumber=phone, CalledShowNumber=config.show_number, TtsCode=config.template,
                         TtsParam=orjson.dumps({"title": title[:TITLE_MAX]}).decode(), PlayTimes=str(PLAY_TIMES),
                         OutId=out_id)


async def place_call(client: httpx.AsyncClient, config: VoiceConfig, phone: str, title: str, out_id: str,
                     now: datetime) -> Outcome:
    """One ``SingleCallByTts`` attempt to ``phone`` at ``now`` (the sender's clock)."""
    number = normalise_phone(phone)
    if number is None:
        return Outcome(False, None, f"not a mainland mobile number: {phone[:3]}…", permanent=True)
    return await rpc_get(client, config.endpoint, request_params(config, number, title, out_id, now,
                                                                 uuid.uuid4().hex), config.timeout, "aliyun voice")
