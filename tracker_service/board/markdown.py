"""Markdown from agents and people, rendered for the board with nothing active left in it.

markdown-it-py in CommonMark mode with raw HTML off: any HTML in the text is shown as text,
and its link check refuses javascript:, vbscript:, file: and data: (but images) URLs. Links
open without a referrer and without access to the board's window.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def _link_open(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    tokens[idx].attrSet("target", "_blank")
    return str(renderer.renderToken(tokens, idx, options, env))


_md.add_render_rule("link_open", _link_open)


def render_markdown(text: str | None) -> str:
    """Safe HTML for `text` (escaped, with only markdown's own elements)."""
    return _md.render(text or "")
