"""How a stored bilingual text is read and how a one-string ``中文 / English`` text is split."""

from __future__ import annotations

import pytest

from guanjia.core.lang import in_lang, split_bilingual


def test_chinese_by_default_english_on_request_english_where_no_chinese() -> None:
    assert in_lang(None, "pump dry", "水泵干运行") == "水泵干运行"
    assert in_lang("zh", "pump dry", "水泵干运行") == "水泵干运行"
    assert in_lang("en", "pump dry", "水泵干运行") == "pump dry"
    assert in_lang("zh", "pump dry", None) == "pump dry"
    assert in_lang("zh", "pump dry", "") == "pump dry"


@pytest.mark.parametrize(("text", "expected"), [
    ("电流偏高 18% / current 18% above normal", ("current 18% above normal", "电流偏高 18%")),
    ("pump-1: 3.2 bar / 4.0 bar", ("pump-1: 3.2 bar / 4.0 bar", None)),  # no Chinese: one English text
    ("网关 gw1 / 1 号楼 离线 / gateway gw1 offline", ("gateway gw1 offline", "网关 gw1 / 1 号楼 离线")),
    ("只有中文", ("只有中文", None)),
])
def test_split_bilingual(text: str, expected: tuple[str, str | None]) -> None:
    assert split_bilingual(text) == expected
