"""Source definitions: the shipped ones load, and a bad file names the file, the key and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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


def test_missing_source_lists_known_ones(tmp_path: Path) -> None:
    _write(tmp_path, DEMO)
    with pytest.raises(
        SourceConfigError, match=r"no such source file \(known sources: \['demo'\]\)"
    ):
        load_source("nosuch", tmp_path)
