"""``provlink.events.parameters.flatten``: one parameter per key, nested keys dotted."""

from __future__ import annotations

from provlink.events.parameters import MAX_DEPTH, flatten


def test_nested_mappings_become_dotted_keys() -> None:
    value = {"C": 0.5, "model": {"depth": 3, "opts": {"warm": True}}, "features": ["a", "b"]}
    assert dict(flatten("op_kwargs", value)) == {
        "op_kwargs.C": 0.5, "op_kwargs.features": ["a", "b"], "op_kwargs.model.depth": 3,
        "op_kwargs.model.opts.warm": True}


def test_positional_arguments_are_indexed_and_scalars_stay_whole() -> None:
    assert dict(flatten("op_args", ["x.csv", {"k": 1}], index_lists=True)) == {
        "op_args.0": "x.csv", "op_args.1.k": 1}
    assert dict(flatten("config", 7)) == {"config": 7}
    assert dict(flatten("config", {})) == {"config": {}}
    assert dict(flatten("op_args", [], index_lists=True)) == {"op_args": []}


def test_depth_is_bounded() -> None:
    deep: dict = {"leaf": 1}
    for _ in range(MAX_DEPTH + 5):
        deep = {"d": deep}
    ((key, value),) = flatten("conf", deep)
    assert key.count(".") == MAX_DEPTH and isinstance(value, dict)


def test_non_string_keys_sort_and_name() -> None:
    assert list(flatten("conf", {2: "b", 1: "a"})) == [("conf.1", "a"), ("conf.2", "b")]
