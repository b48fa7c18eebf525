"""Apply a source's field blueprint to a page: selectors in, raw strings out.

Patterns run under a time limit (`crawler.extraction.patterns`); a field whose pattern runs
out of time on a page comes back empty, with the reason among the page's problems. A list
rule reads at most `max_list_items` rows: a hostile page's 80,000 tier rows are counted
(in libxml2, cheaply), not extracted and normalised, and the count goes on to the problem
that reports the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parsel.csstranslator import css2xpath

from crawler.extraction.compiled import values
from crawler.extraction.patterns import DOTALL, PatternTimeout, search
from crawler.extraction.processors import SINGLE, join

if TYPE_CHECKING:
    from collections.abc import Mapping

    from parsel import Selector, SelectorList
    from regex import Match

    from crawler.sources.model import FieldRule, ListRule, PageBlueprint


@dataclass
class Extraction:
    """Raw field values of one page, and what the blueprint expected but did not find."""

    fields: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    coverage: float = 1.0
    dropped_rows: list[str] = field(default_factory=list)
    #: what went wrong on the page beyond missing fields (a pattern out of time, a page
    #: object that failed); each becomes a problem on the page record
    problems: list[str] = field(default_factory=list)
    #: lists cut at `max_list_items`: name -> the number of rows their selector matched
    list_totals: dict[str, int] = field(default_factory=dict)


def _kept(match: Match[str], template: str | None) -> str:
    """The first group (or the whole match); with a template, "{1}-{2}" of its groups."""
    if template is not None:
        return template.format(match.group(0), *match.groups())
    return match.group(1) if match.groups() else match.group(0)


def _select(rule: FieldRule, node: Selector, url: str, key: str) -> list[str]:
    if rule.const is not None:
        return [rule.const]
    if rule.url_regex is not None:
        match = search(rule.url_regex, url, key=f"{key}.url_regex", url=url)
        return [_kept(match, rule.template)] if match else []
    if rule.css is not None:
        return [v for v in values(node, rule.css, css=True) if v is not None]
    return [v for v in values(node, rule.xpath or "", css=False) if v is not None]


def _apply_regex(
    pattern: str, values: list[str], template: str | None, *, key: str, url: str
) -> list[str]:
    kept = []
    for value in values:
        match = search(pattern, value, flags=DOTALL, key=f"{key}.regex", url=url)
        if match:
            kept.append(_kept(match, template))
    return kept


def extract_value(
    rule: FieldRule, node: Selector, url: str, key: str = "field"
) -> str | list[str] | None:
    """One field: a list when the rule says `multiple`, else the first value or None.

    Raises `PatternTimeout` (naming `key`) when one of the rule's patterns runs out of time.
    """
    values = _select(rule, node, url, key)
    if rule.regex is not None:
        values = _apply_regex(rule.regex, values, rule.template, key=key, url=url)
    for name in rule.processors:
        if name == "join":
            values = [join(values)]
        elif name == "join_lines":
            values = [join(values, "\n")]
        else:
            values = [SINGLE[name](v, url) for v in values]
    values = [v for v in values if v != ""]
    if rule.multiple:
        return values
    return values[0] if values else None


def extract_fields(
    rules: Mapping[str, FieldRule],
    node: Selector,
    url: str,
    prefix: str = "fields",
    problems: list[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Every field of a rule set, and the required ones that came back empty.

    A field whose pattern runs out of time is empty; the reason goes to `problems`.
    """
    fields: dict[str, Any] = {}
    missing: list[str] = []
    for name, rule in rules.items():
        key = f"{prefix}.{name}"
        value: str | list[str] | None = [] if rule.multiple else None
        # A pattern that ran out of time once on this page is not tried on its other rows.
        if problems is None or not any(p.startswith(f"{key}.") for p in problems):
            try:
                value = extract_value(rule, node, url, key)
            except PatternTimeout as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
        fields[name] = value
        if rule.required and not value:
            missing.append(name)
    return fields, missing


def list_rows(list_rule: ListRule, root: Selector, limit: int) -> tuple[SelectorList[Any], int]:
    """The first `limit` rows a list rule selects, and how many it matches in all.

    The count and the cut run in libxml2 (`count()`, `position()`), so rows past the
    limit never become Python objects.
    """
    expr = css2xpath(list_rule.css) if list_rule.css is not None else list_rule.xpath or ""
    try:
        total = int(float(root.xpath(f"count({expr})").get() or 0))
        return root.xpath(f"({expr})[position() <= {limit}]"), total
    except ValueError:  # not a node set (an XPath giving a string): select all, then cut
        nodes = root.xpath(expr)
        return nodes[:limit], len(nodes)


def extract_page(blueprint: PageBlueprint, root: Selector, url: str) -> Extraction:
    """All fields and repeated blocks of a page; coverage is the share of fields found."""
    problems: list[str] = []
    fields, missing = extract_fields(blueprint.fields, root, url, "fields", problems)
    dropped_rows: list[str] = []
    list_totals: dict[str, int] = {}
    for name, list_rule in blueprint.lists.items():
        nodes, total = list_rows(list_rule, root, blueprint.max_list_items)
        if total > blueprint.max_list_items:
            list_totals[name] = total
        records, dropped = [], []
        for index, node in enumerate(nodes):
            prefix = f"lists.{name}.fields"
            record, record_missing = extract_fields(list_rule.fields, node, url, prefix, problems)
            if record_missing:  # one broken row must not cost the page its other fields
                dropped.append(f"{name}[{index}] dropped: {', '.join(record_missing)} not found")
            else:
                records.append(record)
        fields[name] = records
        dropped_rows.extend(dropped)
    declared = [n for n, r in blueprint.fields.items() if r.const is None]
    found = sum(1 for n in declared if fields.get(n))
    coverage = found / len(declared) if declared else 1.0
    return Extraction(
        fields=fields,
        missing=missing,
        coverage=coverage,
        dropped_rows=dropped_rows,
        problems=list(dict.fromkeys(problems)),  # one line per pattern, not per row
        list_totals=list_totals,
    )
