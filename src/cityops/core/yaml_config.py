"""Configuration files in YAML validated by a pydantic model, with errors that name the line.

Case types, device profiles and rules are shipped as YAML and overridable per city; a city editing
one must learn where it went wrong: "case_types.yaml line 42: types.1.sla: ..."."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Model = TypeVar("Model", bound=BaseModel)


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; the message names the file and the line."""


def _node_at(node: Node, loc: tuple[int | str, ...]) -> tuple[Node, tuple[int | str, ...]]:
    """The deepest YAML node along a pydantic error location (for its line number), and the location
    without the tags of discriminated unions: pydantic puts the tag (`kind: threshold` gives
    "threshold") into the location, where the file has no such key."""
    kept: list[int | str] = []
    for i, key in enumerate(loc):
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(key):
                    node = value_node
                    break
            else:
                if any(isinstance(v, ScalarNode) and v.value == str(key) for _, v in node.value):
                    continue
                return node, (*kept, *loc[i:])
        elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
        else:
            return node, (*kept, *loc[i:])
        kept.append(key)
    return node, tuple(kept)


def parse_yaml(text: str, model: type[Model], *, source: str, expected: str,
               error: type[ConfigFileError] = ConfigFileError) -> Model:
    """Validate a YAML document against `model`; `error` names the line of the first problem.
    `expected` says what the document's top level should be, for an empty or non-mapping file."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{source}{line}: not valid YAML: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character: the reader knows its offset only
        line_no = text.count("\n", 0, exc.position) + 1
        raise error(f"{source} line {line_no}: not valid YAML: character #x{exc.character:04x} "
                    "is not allowed") from None
    if root is None or not isinstance(data, dict):
        raise error(f"{source}: expected {expected}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and re.fullmatch(r"[a-z-]+\[.*\]", p)))
        node, loc = _node_at(root, loc)
        where = ".".join(str(p) for p in loc) or "document"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise error(f"{source} line {node.start_mark.line + 1}: {where}: {first['msg']}{more}") from None


def load_yaml_file(path: Path, model: type[Model], *, expected: str,
                   error: type[ConfigFileError] = ConfigFileError) -> Model:
    """parse_yaml on a file; a file that cannot be read is the same error, naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {path.name}: {exc.strerror}") from None
    return parse_yaml(text, model, source=path.name, expected=expected, error=error)
