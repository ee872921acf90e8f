"""The library stays a house a newcomer can walk: no module of src/obsscale over 400 lines."""

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "obsscale"


def test_no_module_over_400_lines():
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert sizes, "no module found"
    too_long = {name: n for name, n in sizes.items() if n > 400}
    assert not too_long, f"modules over 400 lines: {too_long}"
