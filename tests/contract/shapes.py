"""Shape comparison of JSON values: keys, JSON types and nesting, never the values themselves.

The JSON types are ``object``, ``array``, ``string``, ``integer``, ``number`` (a float: ``1.0`` is a
number, not an integer), ``boolean`` and ``null``. ``null`` in a fixture matches ``null`` only.

Arrays are compared by their items' shapes: every item of the actual array must have the shape of
some item of the fixture's array (the fixture's items are the documented variants, e.g. a result
that is an image or a per-image error). An empty fixture array says nothing about items.
"""

from __future__ import annotations

from typing import Any

Shape = Any  # a type name (str), {key: Shape}, or a list of distinct item Shapes


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int to Python, not to JSON
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def shape(value: Any) -> Shape:
    """The shape of a JSON value: objects map keys to shapes, arrays list their distinct item
    shapes in first-seen order, anything else is its JSON type name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        distinct: list[Shape] = []
        for item in value:
            item_shape = shape(item)
            if item_shape not in distinct:
                distinct.append(item_shape)
        return distinct
    return json_type(value)


def differences(expected: Any, actual: Any, where: str = "body") -> list[str]:
    """Every way ``actual`` differs in shape from ``expected``, each naming its path."""
    expected_type, actual_type = json_type(expected), json_type(actual)
    if expected_type != actual_type:
        return [
            f"{where}: type mismatch: fixture has {expected_type} ({expected!r:.60}), "
            f"actual has {actual_type} ({actual!r:.60})"
        ]
    if isinstance(expected, dict):
        found: list[str] = []
        for key in expected:
            if key not in actual:
                found.append(f"{where}: missing key {key!r}")
        for key in actual:
            if key not in expected:
                found.append(f"{where}: extra key {key!r} ({json_type(actual[key])})")
        for key in expected:
            if key in actual:
                found.extend(differences(expected[key], actual[key], f"{where}.{key}"))
        return found
    if isinstance(expected, list):
        return _array_differences(expected, actual, where)
    return []


def _array_differences(expected: list[Any], actual: list[Any], where: str) -> list[str]:
    if not expected:
        return []
    # One representative per distinct fixture item shape.
    variants: list[Any] = []
    seen: list[Shape] = []
    for item in expected:
        item_shape = shape(item)
        if item_shape not in seen:
            seen.append(item_shape)
            variants.append(item)
    found: list[str] = []
    for index, item in enumerate(actual):
        path = f"{where}[{index}]"
        candidates = [differences(variant, item, path) for variant in variants]
        if any(not diff for diff in candidates):
            continue
        closest = min(candidates, key=len)
        if len(variants) > 1:
            found.append(f"{path}: matches none of the fixture's {len(variants)} item shapes")
        found.extend(closest)
    return found


def assert_same_shape(fixture_body: Any, actual_body: Any, where: str = "body") -> None:
    """Fail, naming each path that differs, unless ``actual_body`` has the fixture's shape."""
    found = differences(fixture_body, actual_body, where)
    if found:
        raise AssertionError(f"{where} differs in shape from the fixture:\n  " + "\n  ".join(found))
