"""Scientific notation in config files (`1.9e7`), which Snakemake's YAML 1.1 reader leaves as
strings, is read as numbers where the schema asks for one (obsscale.stages.config_numbers)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from obsscale.stages.config_numbers import coerce_numbers, parse_number

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize(
    "text, value",
    [("1.9e7", 1.9e7), ("3e-4", 3e-4), ("-2.5E+3", -2500.0), (".5e1", 5.0), ("1.e2", 100.0)],
)
def test_scientific_notation_is_a_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["1.9", "abc", "1e", "e7", "1.9e7b", "", "pythia-1e7"])
def test_other_strings_are_not(text):
    assert parse_number(text) is None


def test_integer_fields_take_only_whole_numbers():
    assert parse_number("1e3", integer=True) == 1000
    assert isinstance(parse_number("1e3", integer=True), int)
    assert parse_number("1.5e0", integer=True) is None


def test_yaml_1_1_reads_the_shipped_passuntil_sizes_as_strings():
    # The reason for the loader: the reader Snakemake uses gives strings here.
    text = (ROOT / "config/passuntil/example.yaml").read_text()
    models = yaml.safe_load(text)["passuntil"]["series"]["pythia"]["models"]
    assert models[0]["N"] == "1.9e7"


def test_the_shipped_passuntil_example_validates_after_coercion():
    schema = yaml.safe_load(SCHEMA.read_text())
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.update(yaml.safe_load((ROOT / "config/passuntil/example.yaml").read_text()))
    with pytest.raises(jsonschema.ValidationError, match=r"'[0-9.]+e[0-9]+' is not of type 'number'"):
        jsonschema.validate(config, schema)
    coerce_numbers(config, SCHEMA)
    models = config["passuntil"]["series"]["pythia"]["models"]
    assert [m["N"] for m in models][:2] == [1.9e7, 8.5e7]
    assert models[0]["name"] == "pythia-70m"
    jsonschema.validate(config, schema)


def test_only_fields_the_schema_types_as_numbers_change():
    schema = {
        "$defs": {"rate": {"type": "number"}},
        "type": "object",
        "properties": {
            "lr": {"$ref": "#/$defs/rate"},
            "steps": {"type": "integer"},
            "name": {"type": "string"},
            "sizes": {"type": "array", "items": {"type": "number"}},
            "either": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "by_name": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }
    config = {"lr": "3e-4", "steps": "2e3", "name": "1e5", "sizes": ["1e6", 2.0], "either": "1e1",
              "by_name": {"a": "4e2"}, "unknown": "5e5"}
    coerce_numbers(config, schema)
    assert config == {"lr": 3e-4, "steps": 2000, "name": "1e5", "sizes": [1e6, 2.0], "either": 10.0,
                      "by_name": {"a": 400.0}, "unknown": "5e5"}
