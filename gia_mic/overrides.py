"""
`--config_overrides 'hidden_size=128,gate_type=none,class_weights=[1,2,3,4]'`: each value is parsed by the type the
config class declares for its field, with an error that names the field, the value and the type expected.
"""

import json
import math
import types
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin

from transformers import PreTrainedConfig


def parse_overrides(text: str | None, config_class: type[PreTrainedConfig]) -> dict[str, Any]:
    """'field=value,field=value' -> {field: typed value} for `config_class`; commas inside [...] or {...} stay."""
    if not text or not text.strip():
        return {}
    declared = {f.name: f.type for f in fields(config_class)}
    overrides = {}
    for item in split_top_level(text):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"--config_overrides: {item.strip()!r} is not FIELD=VALUE.")
        if key not in declared:
            raise ValueError(
                f"--config_overrides: {key!r} is not a {config_class.__name__} field; "
                f"the fields are {', '.join(sorted(declared))}."
            )
        overrides[key] = parse_value(value.strip(), declared[key], f"--config_overrides: {key}={value.strip()!r}")
    return overrides


def split_top_level(text: str) -> list[str]:
    """Split on the commas that are not inside brackets or braces."""
    items, depth, current = [], 0, []
    for character in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(character, 0)
        if character == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(character)
    items.append("".join(current))
    return [item for item in items if item.strip()]


def parse_value(text: str, annotation: Any, where: str) -> Any:
    """`text` as a value of `annotation` (bool, int, float, str, Literal, list[...], dict, optional forms)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        if text in args:
            return text
        raise ValueError(f"{where} is not one of {', '.join(map(str, args))}.")
    if origin in (Union, types.UnionType):
        options = [option for option in args if option is not type(None)]
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        errors = []
        for option in options:
            try:
                return parse_value(text, option, where)
            except ValueError as error:
                errors.append(error)
        raise ValueError(f"{where} is not {' or '.join(describe(option) for option in options)}.") from errors[0]
    if annotation is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() in words:
            return words[text.lower()]
        raise ValueError(f"{where} is not a boolean (true or false).")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{where} is not a whole number.") from None
    if annotation is float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{where} is not a finite number.")
        return number
    if annotation is str:
        return text
    if origin is list:
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else None
        if inner is None:
            raise ValueError(f"{where} is not a list; write it as [a,b,...].")
        return [parse_value(part.strip(), args[0] if args else str, where) for part in split_top_level(inner)]
    if annotation is dict or (isinstance(annotation, type) and issubclass(annotation, PreTrainedConfig)):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not a JSON object {{...}}.")
        return value
    raise ValueError(f"{where}: fields of type {describe(annotation)} cannot be set from the command line.")


def describe(annotation: Any) -> str:
    """A type as a user reads it: 'a whole number', 'a list of numbers', ..."""
    names = {bool: "a boolean", int: "a whole number", float: "a number", str: "a string", dict: "a JSON object"}
    if annotation in names:
        return names[annotation]
    if get_origin(annotation) is list:
        element = describe(get_args(annotation)[0]).removeprefix("a ") if get_args(annotation) else "value"
        return f"a list of {element}s"
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, get_args(annotation)))
    if isinstance(annotation, type) and issubclass(annotation, PreTrainedConfig):
        return "a JSON object"
    return getattr(annotation, "__name__", str(annotation))
