"""Chinese (the default) or English: how every stored bilingual text is read.

A text people read is stored as two columns or fields, ``x`` (English) and ``x_zh`` (Chinese):
an alarm's ``message`` and its ``message_zh`` label, a work order's ``title`` and ``title_zh``.
Why two plain strings and not one ``{zh, en}`` object: the English one is the column every older
reader, webhook and CSV already knows, and a text someone typed (a resident's report) is one text
in both languages. The Chinese one may be missing (a row written before both existed, a rule
without ``message_zh``): a Chinese reader then sees the English text rather than nothing.
"""

from __future__ import annotations

import re


def in_lang(lang: str | None, en: str, zh: str | None) -> str:
    """``en`` for an English reader, ``zh`` for everyone else (English where there is no zh)."""
    return en if lang == "en" or not zh else zh


_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_SPLIT = re.compile(r"\s?/\s")


def split_bilingual(text: str) -> tuple[str, str | None]:
    """(English, Chinese) of a message written as one ``中文 / English`` string (the analytics
    explanations; the ingest's security and incarnation alarms stored before they carried
    ``message_zh``), or (``text``, None) when it is not
    one: the first `` / `` with Chinese before it and none after it is the seam."""
    for seam in _SPLIT.finditer(text):
        zh, en = text[:seam.start()].strip(), text[seam.end():].strip()
        if zh and en and _CJK.search(zh) and not _CJK.search(en):
            return en, zh
    return text, None
