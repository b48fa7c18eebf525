"""Source definitions: the shipped ones load, and a bad file names the file, the key and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crawler.sources.fields import FIELDS
from crawler.sources.loader import DEFAULT_SOURCES_DIR, SourceConfigError, load_source

DEMO = yaml.safe_load((DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", sorted(DEFAULT_SOURCES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sources_load(path: Path) -> None:
    source = load_source(path.stem)
    assert source.id == path.stem
    assert source.pages


def _write(tmp_path: Path, data: object, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def _edited(**changes: object) -> dict[str, object]:
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_edited(network="i2p"), "key network: Input should be 'tor' or 'clearnet'"),
        (_edited(mirrors=[]), "key mirrors: List should have at least 1 item"),
        (_edited(mirrors=["ftp://x"]), "mirror 'ftp://x' is not an http(s) URL"),
        (
            _edited(mirrors=["http://abcdefghijklmnop.onion"]),
            "are onion services: set network: tor",
        ),
        (_edited(politeness={"concurrency": 0}), "key politeness.concurrency"),
        (_edited(politeness={"concurency": 2}), "key politeness.concurency: Extra inputs"),
        (
            _edited(pages__listing__fields__title={"css": "h1", "xpath": "//h1"}),
            "key pages.listing.fields.title: Value error, give exactly one of css",
        ),
        (
            _edited(pages__listing__fields__title={"css": "h1", "regex": "(unclosed"}),
            "key pages.listing.fields.title.regex: Value error, not a valid regular expression",
        ),
        (
            _edited(pages__listing__fields__title={"css": "h1", "processors": ["shout"]}),
            "unknown processor(s) ['shout']",
        ),
        (_edited(states=[{"state": "captcha"}]), "key states.0: Value error, a detector needs"),
        (_edited(states=[{"state": "sleepy", "css": "x"}]), "key states.0.state"),
        (_edited(session={"cookies": {"sid": {}}}), "key session.cookies.sid: Value error"),
        (_edited(follow=None), "key follow: Field required"),
        (_edited(id="other"), "key id: 'other' must match the file name 'demo'"),
        (
            _edited(pages__listing__fields__ship_from={"css": "span.from::text"}),
            "key pages.listing.fields.ship_from: unknown listing page field 'ship_from'; "
            "did you mean 'ships_from'?",
        ),
        (
            _edited(pages__vendor__fields__pgp={"css": "pre::text"}),
            "key pages.vendor.fields.pgp: unknown vendor page field 'pgp'; did you mean 'pgp_key'?",
        ),
        (
            _edited(pages__index__fields__listings_total={"css": "p::text"}),
            "key pages.index.fields.listings_total: unknown index page field 'listings_total'; "
            "did you mean 'listing_total'?",
        ),
        (
            _edited(pages__listing__lists__feedback__fields__stars={"css": "b::text"}),
            "key pages.listing.lists.feedback.fields.stars: unknown feedback field 'stars'; "
            "expected one of ['buyer', 'date', 'rating', 'text']",
        ),
        (
            _edited(pages__vendor__lists={"feedbacks": {"css": "li", "fields": {}}}),
            "key pages.vendor.lists.feedbacks: unknown vendor page list 'feedbacks': "
            "this page kind has none",
        ),
        (
            _edited(pages__listing__fields__tiers={"css": "td::text"}),
            "key pages.listing.fields.tiers: 'tiers' is a list of blocks: "
            "give it under pages.listing.lists",
        ),
        ("id: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping of keys at the top level"),
    ],
)
def test_bad_source_names_file_key_and_expectation(
    tmp_path: Path, data: object, expected: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(SourceConfigError) as caught:
        load_source(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_every_misspelt_field_is_named_at_once(tmp_path: Path) -> None:
    """A file with several typos gets them all in one message, each with its own key."""
    data = _edited(pages__listing__fields__ships_from=None, pages__vendor__fields__ships_to=None)
    data["pages"]["listing"]["fields"]["ship_from"] = DEMO["pages"]["listing"]["fields"][
        "ships_from"
    ]
    data["pages"]["vendor"]["fields"]["shipsto"] = DEMO["pages"]["vendor"]["fields"]["ships_to"]
    path = _write(tmp_path, data)
    with pytest.raises(SourceConfigError) as caught:
        load_source(str(path))
    assert caught.value.problems == [
        "key pages.listing.fields.ship_from: unknown listing page field 'ship_from'; did you "
        f"mean 'ships_from'? expected one of {sorted(FIELDS['listing'])}",
        "key pages.vendor.fields.shipsto: unknown vendor page field 'shipsto'; did you mean "
        f"'ships_to'? expected one of {sorted(FIELDS['vendor'])}",
    ]


def test_a_sources_own_fields_are_declared_not_guessed(tmp_path: Path) -> None:
    """`extra_fields` names what the source keeps beyond the known fields; the rest of its
    field names are still checked."""
    data = _edited()
    listing = data["pages"]["listing"]
    listing["fields"]["shipping_note"] = {"css": "p.note::text"}
    with pytest.raises(SourceConfigError, match="unknown listing page field 'shipping_note'"):
        load_source(str(_write(tmp_path, data)))
    listing["extra_fields"] = ["shipping_note"]
    assert load_source(str(_write(tmp_path, data))).pages["listing"].extra_fields == [
        "shipping_note"
    ]


def test_missing_source_lists_known_ones(tmp_path: Path) -> None:
    _write(tmp_path, DEMO)
    with pytest.raises(
        SourceConfigError, match=r"no such source file \(known sources: \['demo'\]\)"
    ):
        load_source("nosuch", tmp_path)
