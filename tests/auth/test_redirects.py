"""Where mailed links may send a browser (and its tokens): GoTrue's allow-list globs."""

from __future__ import annotations

import pytest

from pocketbizz.auth.http import allow_list_glob


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("https://*.example.com", "https://shop.example.com", True),
        ("https://*.example.com", "https://evil.test/?next=.example.com", False),
        ("https://*.example.com", "https://a.b.example.com", False),
        ("https://**.example.com", "https://a.b.example.com", True),
        ("http://partner.test/*", "http://partner.test/reset", True),
        ("http://partner.test/*", "http://partner.test/a/b", False),
        ("http://partner.test/**", "http://partner.test/a/b?c=1", True),
        ("http://partner.test/*", "http://partner.test.evil.test/reset", False),
        ("myapp://login-callback", "myapp://login-callback", True),
    ],
)
def test_allow_list_globs(pattern: str, url: str, allowed: bool) -> None:
    assert bool(allow_list_glob(pattern).fullmatch(url)) is allowed
