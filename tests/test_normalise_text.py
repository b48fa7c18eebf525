"""Listing descriptions and vendor "about" texts, as plain text and as HTML.

Descriptions arrive padded with NBSPs and zero-width characters, with CRLF line ends and
runs of blank lines, or as HTML from the market's editor (``<p>``, ``<br>``, lists,
headings, stray ``<script>``), whose own source newlines must not become line breaks.
"""

from __future__ import annotations

import sys

import pytest

from pipelines.normalise import clean_text, html_to_text
from pipelines.normalise.text import MAX_DEPTH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("Pure MDMA", "Pure MDMA"),
        ("  Pure   MDMA  ", "Pure MDMA"),
        ("Pure\u00a0MDMA", "Pure MDMA"),
        ("Pure\u202f\u2009MDMA", "Pure MDMA"),
        ("Pure\tMDMA", "Pure MDMA"),
        ("Pu\u200bre MDMA\ufeff", "Pure MDMA"),
        ("line one\nline two", "line one\nline two"),
        ("line one\r\nline two", "line one\nline two"),
        ("line one  \n   line two", "line one\nline two"),
        ("para one\n\npara two", "para one\n\npara two"),
        ("para one\n\n\n\n\npara two", "para one\n\npara two"),
        ("para one\n  \n \t \npara two", "para one\n\npara two"),
        ("\n\nStealth shipping\n\n", "Stealth shipping"),
        ("Cafe\u0301", "Café"),  # NFC
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("plain", "plain"),
        ("<p>Top   quality</p>", "Top quality"),
        ("<p>Top quality</p><p>Fast shipping</p>", "Top quality\n\nFast shipping"),
        ("<p>Top\n   quality\n</p>", "Top quality"),
        ("Stealth<br>shipping", "Stealth\nshipping"),
        ("Stealth<br/>shipping<br />daily", "Stealth\nshipping\ndaily"),
        ("Stealth<br><br>shipping", "Stealth\n\nshipping"),
        ("<b>Pure</b> <i>MDMA</i>", "Pure MDMA"),
        ("Pure&nbsp;MDMA &amp; more", "Pure MDMA & more"),
        ("<h2>Terms</h2><p>No refunds.</p>", "Terms\n\nNo refunds."),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<p>Intro</p><ul><li>one</li><li>two</li></ul><p>Outro</p>", "Intro\n\none\ntwo\n\nOutro"),
        ("<div><div><p>nested</p></div></div>", "nested"),
        ("<p>a</p><script>alert(1)</script><style>p{}</style><p>b</p>", "a\n\nb"),
        ("<p>a<!-- vendor note --></p>", "a"),
        ("<table><tr><td>1g</td><td>$10</td></tr><tr><td>5g</td><td>$45</td></tr></table>",
         "1g $10\n5g $45"),
        ("<pre>line 1\nline 2</pre>", "line 1\nline 2"),
        ("<p>unclosed<p>tags", "unclosed\n\ntags"),
    ],
)  # fmt: skip
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_reads_a_description_deeper_than_pythons_recursion_limit() -> None:
    """A hostile description: no RecursionError; below MAX_DEPTH the text stays, unshaped."""
    depth = 5 * MAX_DEPTH + sys.getrecursionlimit()
    deep = "<div>" * depth + "buried <p>words</p>" + "</div>" * depth
    assert html_to_text(f"<p>before</p>{deep}<p>after</p>") == "before\n\nburied words\n\nafter"
    shallow = "<div>" * (MAX_DEPTH - 1) + "a<p>b</p>" + "</div>" * (MAX_DEPTH - 1)
    assert html_to_text(shallow) == "a\n\nb"
