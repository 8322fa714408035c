"""Export recipes are untrusted TOML: every key's type checked, errors name the file."""

import pytest

from segdeploy.errors import BadInputError
from segdeploy.export.recipe import load_recipe


@pytest.mark.parametrize("text, message", [
    ("atol = 1979-05-27T07:32:00Z", "'atol' must be int or float, not datetime"),  # reached check_range: TypeError
    ("opset = false", "'opset' must be int, not bool"),  # was read as opset 0: "--opset False is too old"
    ("dynamic = [1]", "'dynamic' must be bool, not list"),
    ("rtol = -1.0", "r.toml: --rtol must be >= 0.0, got -1.0"),  # the value came from the file: say so
    ("input_size = 5", "'input_size' must be str, not int"),
    ("opset = 1" + "0" * 5000, "holds a number too long to read"),
    ("x = " + "[" * 100_000 + "]" * 100_000, "not a valid export recipe"),
], ids=["datetime", "bool-as-int", "list-as-bool", "range", "size-type", "huge-int", "deep"])
def test_malformed_recipes_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "r.toml").write_text(text + "\n")
    with pytest.raises(BadInputError, match=message.replace("[", r"\[")) as refused:
        load_recipe(tmp_path / "r.toml")
    assert "\n" not in str(refused.value)


def test_the_shipped_recipes_load():
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[2] / "export").glob("*.toml"))
    assert recipes and all(load_recipe(path).config.opset >= 18 for path in recipes)
