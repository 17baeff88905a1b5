"""docs/events.md is the public event schema: it must name every event type of the code with
its schema version and every field, of the envelope, of each event and of the objects in them."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from batch_gateway.events.batch_events import BatchCreated
from batch_gateway.events.envelope import Envelope, encode
from batch_gateway.events.types import EVENT_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
_HEADING = re.compile(r"^(#+) (.*)$", re.MULTILINE)
_CODE = re.compile(r"`([^`]+)`")


def sections() -> dict[str, str]:
    """Each heading's text -> the text under it, up to the next heading."""
    text = DOC.read_text()
    headings = list(_HEADING.finditer(text))
    return {
        heading.group(2): text[heading.end() : following.start() if following else len(text)]
        for heading, following in zip(headings, [*headings[1:], None], strict=True)
    }


def section_of(name: str) -> tuple[str, str]:
    """(heading, body) of the section headed by `name` in backquotes."""
    found = [(h, body) for h, body in sections().items() if name in _CODE.findall(h)]
    assert len(found) == 1, f"docs/events.md needs one section headed `{name}`, found {len(found)}"
    return found[0]


def documented_fields(body: str) -> set[str]:
    """The names in backquotes that start a table row: `| `name` | type | meaning |`."""
    return {m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", body, re.MULTILINE)}


def nested_structs(cls: type[msgspec.Struct]) -> set[type[msgspec.Struct]]:
    """The Struct types an event's fields hold (in unions and lists too), recursively."""
    found: set[type[msgspec.Struct]] = set()

    def visit(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls not in found:
                found.add(info.cls)
                for field in info.fields:
                    visit(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                visit(member)
        elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.DictType):
            visit(info.item_type if isinstance(info, msgspec.inspect.ListType) else info.value_type)

    visit(msgspec.inspect.type_info(cls))
    return found - {cls}


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_every_event_type_is_documented_with_its_version_and_fields(type_name: str) -> None:
    cls = EVENT_TYPES[type_name]
    heading, body = section_of(type_name)
    assert f"schema_version {cls.schema_version}" in heading
    fields = {field.name for field in msgspec.structs.fields(cls)}
    assert fields <= documented_fields(body), f"{type_name}: {fields - documented_fields(body)}"


def test_every_object_inside_events_is_documented() -> None:
    objects = set().union(*(nested_structs(cls) for cls in EVENT_TYPES.values()))
    assert {cls.__name__ for cls in objects} == {"RequestCounts", "Usage", "BatchError"}
    for cls in objects:
        _, body = section_of(cls.__name__)
        fields = {field.name for field in msgspec.structs.fields(cls)}
        assert fields <= documented_fields(body), (
            f"{cls.__name__}: {fields - documented_fields(body)}"
        )


def test_the_envelope_is_documented() -> None:
    event = BatchCreated(
        input_file_id="file-1", endpoint="/v1/chat/completions", completion_window="24h",
        created_at=1, expires_at=2,
    )  # fmt: skip
    envelope = Envelope(
        event_id="evt_1", aggregate_id="batch_1", aggregate_version=1, tenant="t",
        occurred_at=1.0, event=event,
    )  # fmt: skip
    wire = msgspec.json.decode(encode(envelope)[1])
    body = sections()["The envelope"]
    assert set(wire) <= documented_fields(body)


def test_the_doc_names_no_event_type_the_code_does_not_have() -> None:
    typed = {
        name
        for heading in sections()
        for name in _CODE.findall(heading)
        if re.fullmatch(r"[a-z]+\.[a-z_]+", name)
    }
    assert typed == set(EVENT_TYPES)
