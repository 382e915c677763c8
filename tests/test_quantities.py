import pytest

from forecast import UsageError, format_count, format_flops, parse_quantity


@pytest.mark.parametrize("text, value", [
    ("70B", 7e10), ("410M", 4.1e8), ("410m", 4.1e8), ("1.4T", 1.4e12), ("6e23", 6e23),
    ("2.5e9", 2.5e9), ("300b", 3e11), ("13k", 1.3e4), ("2097152", 2097152.0), (".5K", 500.0),
    (7e10, 7e10), (" 7B ", 7e9), ("1", 1.0),
])
def test_parse_quantity(text, value):
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", [
    "70Q", "", "B", "-5B", "0", "nan", "inf", "1e", "7 billion", "70 B", "70G", "1P", "1_000", "70,000,000,000",
    "2,097,152", "0.5", "1e-3", "1e400", "+5", 0.5, float("nan"),
])
def test_parse_quantity_rejects(text):
    """The grammar's refusals (quantities module docstring), each naming the accepted forms."""
    with pytest.raises(UsageError, match="--params") as caught:
        parse_quantity(text, what="--params")
    assert "70B, 410M, 1.4T" in str(caught.value)


def test_format():
    assert format_count(7e10) == "70B"
    assert format_count(4.1e8) == "410M"
    assert format_count(2.1e12) == "2.1T"
    assert format_flops(1.234e24) == "1.2e+24"
    assert format_count(None) == "-"
