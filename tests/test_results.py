import json

import pytest

from hypersiren.errors import NonFiniteResultError
from hypersiren.results import markdown_table, write_curves_csv, write_json, write_table


def test_markdown_table_formats_floats_and_missing_values():
    rows = [{"network": "SIREN", "psnr_db": 36.58123, "extra": None}, {"network": "ReLU", "psnr_db": 16.6, "extra": 3}]
    table = markdown_table(rows)
    assert table.splitlines() == [
        "| network | psnr_db | extra |",
        "|---|---:|---:|",
        "| SIREN | 36.58 | — |",
        "| ReLU | 16.6 | 3 |",
    ]


def test_write_table_writes_markdown_and_json(tmp_path):
    rows = [{"fit": "gradient only", "psnr_db": 30.5}]
    markdown = write_table(rows, tmp_path, "fits", "Derivative fits")
    assert (tmp_path / "fits.md").read_text() == markdown
    assert markdown.startswith("## Derivative fits")
    assert json.loads((tmp_path / "fits.json").read_text()) == rows


def test_curves_csv_has_one_row_per_step(tmp_path):
    write_curves_csv({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}, tmp_path / "curves.csv")
    assert (tmp_path / "curves.csv").read_text().splitlines() == [
        "step,a,b",
        "0,1.0000,4.0000",
        "1,2.0000,5.0000",
        "2,3.0000,6.0000",
    ]
    with pytest.raises(ValueError, match="equal lengths"):
        write_curves_csv({"a": [1.0], "b": [1.0, 2.0]}, tmp_path / "bad.csv")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_json_results_are_strict_and_a_non_finite_number_is_refused_naming_it(tmp_path, value):
    results = {"10": {"hypersiren": {"psnr": 21.5, "psnr_unobserved": value}}, "rows": [1.0, 2]}
    with pytest.raises(NonFiniteResultError, match=r"entry \['10'\]\['hypersiren'\]\['psnr_unobserved'\] is not"):
        write_json(results, tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()
    write_json(results | {"10": None}, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text(), parse_constant=pytest.fail)["rows"] == [1.0, 2]
