import matplotlib.image
import pytest
import torch

from hypersiren.errors import NonFiniteResultError
from hypersiren.figures import (
    MISSING_COLOUR,
    MISSING_LEGEND,
    context_image,
    display_scale,
    magnitude_for_display,
    plot_curves,
    save_labeled_grid,
    save_png,
    signed_distance_for_display,
    signed_for_display,
)


def test_plot_draws_each_curve_in_its_own_colour(tmp_path):
    plot_curves({"rising": [float(i) for i in range(50)], "flat": [10.0] * 50}, tmp_path / "curves.png")
    pixels = torch.from_numpy(matplotlib.image.imread(tmp_path / "curves.png"))[..., :3]  # (H, W, 3) in [0, 1]
    for colour in [(0.122, 0.467, 0.706), (1.0, 0.498, 0.055)]:  # matplotlib's first two line colours
        close = (pixels - torch.tensor(colour)).abs().amax(dim=-1) < 0.02
        assert close.sum() > 100
    with pytest.raises(ValueError, match="finite"):
        plot_curves({"nan": [float("nan")]}, tmp_path / "nan.png")


def test_labeled_grid_shows_each_tile_and_checks_its_labels(tmp_path):
    tiles = torch.zeros(6, 3, 8, 8)
    tiles[4, 0] = 1.0  # row 2, column 2 is pure red
    save_labeled_grid(tiles, tmp_path / "grid.png", column_labels=["a", "b", "c"], row_labels=["row 1", "row 2"])
    pixels = torch.from_numpy(matplotlib.image.imread(tmp_path / "grid.png"))[..., :3]
    red = (pixels - torch.tensor([1.0, 0.0, 0.0])).abs().amax(dim=-1) < 0.02
    rows, columns = red.nonzero().T
    assert red.sum() > 1000  # drawn as a block, not a few pixels
    assert (
        rows.float().mean() > pixels.shape[0] / 2
        and pixels.shape[1] / 3 < columns.float().mean() < 2 * pixels.shape[1] / 3
    )
    with pytest.raises(ValueError, match="do not fill"):
        save_labeled_grid(torch.rand(5, 1, 8, 8), tmp_path / "bad.png", column_labels=["a", "b"])
    with pytest.raises(ValueError, match="row labels"):
        save_labeled_grid(torch.rand(4, 1, 8, 8), tmp_path / "bad.png", column_labels=["a", "b"], row_labels=["one"])


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


def test_missing_pixels_are_coloured_so_no_grey_pixel_passes_for_one():
    gray = torch.full((1, 1, 2, 2), 0.5)  # a grayscale image: every observed pixel is grey
    mask = torch.tensor([[True, False], [False, True]]).view(1, 1, 2, 2)
    shown = context_image(gray, mask)
    assert shown.shape == (1, 3, 2, 2)
    assert (shown[0, :, 0, 0] == 0.5).all() and shown[0, :, 0, 1].tolist() == list(MISSING_COLOUR)


def test_a_legend_is_drawn_under_the_tiles(tmp_path):
    tiles = torch.rand(2, 3, 8, 8)
    save_labeled_grid(tiles, tmp_path / "plain.png", column_labels=["a", "b"])
    save_labeled_grid(tiles, tmp_path / "legend.png", column_labels=["a", "b"], legend=MISSING_LEGEND)
    plain, legend = matplotlib.image.imread(tmp_path / "plain.png"), matplotlib.image.imread(tmp_path / "legend.png")
    magenta = (legend[..., 0] > 0.8) & (legend[..., 1] < 0.2) & (legend[..., 2] > 0.8)
    assert magenta.sum() > 20 and plain.shape == legend.shape  # the legend's patch, in the same figure size


def test_an_image_holding_nan_or_inf_is_refused_not_drawn_black(tmp_path):
    image = torch.rand(1, 3, 4, 4)
    image[0, 1, 2, 3] = float("nan")
    with pytest.raises(NonFiniteResultError, match="1 of its 48 values are NaN or inf"):
        save_png(image, tmp_path / "completed.png")
    with pytest.raises(NonFiniteResultError):
        save_labeled_grid(image.clamp(max=float("inf")) / 0, tmp_path / "grid.png", column_labels=["a"])
    assert list(tmp_path.iterdir()) == []


def test_psnr_vs_context_plot_names_its_x_axis(tmp_path, monkeypatch):
    import hypersiren.figures as figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure))
    results = {"10": {"a": {"psnr": 12.0}}, "100": {"a": {"psnr": 20.0}}, "top_half": {"a": {"psnr": 15.0}}}
    figures.plot_psnr_vs_context(results, {"a": "method a"}, tmp_path / "plot.png", points="samples (of 128)")
    axes = drawn[0].axes[0]
    assert axes.get_xlabel() == "observed samples (of 128)"
    assert [line.get_label() for line in axes.get_lines()] == ["method a"]
