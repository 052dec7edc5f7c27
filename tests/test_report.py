import json

import pytest
import torch

from hypersiren.report import (
    display_scale,
    labeled_grid,
    magnitude_for_display,
    markdown_table,
    plot_curves,
    signed_distance_for_display,
    signed_for_display,
    write_curves_csv,
    write_table,
)


def test_markdown_table_formats_floats_and_missing_values():
    rows = [{"network": "SIREN", "psnr_db": 36.58123, "extra": None}, {"network": "ReLU", "psnr_db": 16.6, "extra": 3}]
    table = markdown_table(rows)
    assert table.splitlines() == [
        "| network | psnr_db | extra |",
        "|---|---|---|",
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


def test_plot_draws_each_curve_in_its_colour():
    plot = plot_curves({"rising": [float(i) for i in range(50)], "flat": [10.0] * 50}, width=400, height=300)
    assert plot.shape == (3, 300, 400) and 0 <= plot.min() and plot.max() <= 1
    pixels = (plot * 255).round().to(torch.uint8).flatten(1).T
    for colour in [(0, 114, 178), (213, 94, 0)]:  # the first two line colours
        assert (pixels == torch.tensor(colour, dtype=torch.uint8)).all(dim=1).sum() > 50


def test_labeled_grid_enlarges_small_tiles_and_adds_a_label_band():
    tiles = torch.rand(6, 1, 32, 32)
    figure = labeled_grid(tiles, ["a", "b", "c"], ["row 1", "row 2"], min_tile=64)
    assert figure.shape[0] == 3
    assert figure.shape[1] > 2 * 64 and figure.shape[2] > 3 * 64  # tiles doubled, plus labels
    with pytest.raises(ValueError, match="do not fill"):
        labeled_grid(torch.rand(5, 1, 8, 8), ["a", "b"])


def test_display_scaling():
    values = torch.linspace(-2, 2, 101)
    assert display_scale(values, quantile=1.0) == pytest.approx(2.0)
    signed = signed_for_display(values, scale=1.0)
    assert signed[50] == 0.5 and signed[0] == 0.0 and signed[-1] == 1.0
    torch.testing.assert_close(magnitude_for_display(values.abs(), scale=4.0), values.abs() / 4)


def test_signed_distance_picture_marks_the_zero_level_and_the_sides():
    axis = torch.linspace(-1, 1, 65)
    distance = axis.expand(65, 65)  # signed distance to the vertical line x = 0
    picture = signed_distance_for_display(distance)
    assert picture.shape == (3, 65, 65)
    assert picture[:, :, 32].abs().max() == 0  # the zero level set is black
    assert picture[0, :, 60].mean() > picture[2, :, 60].mean()  # outside: orange (red > blue)
    assert picture[2, :, 4].mean() > picture[0, :, 4].mean()  # inside: blue
