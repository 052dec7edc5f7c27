import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from hypersiren.across.config import ModelConfig
from hypersiren.across.decoders import sample_grid
from hypersiren.across.model import HyperSiren
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.render import render

HEIGHT, WIDTH = 8, 6  # the size of conftest.py's batch


def small_config(**overrides):
    fields = dict(
        channels=3,
        latent_dim=16,
        encoder_widths=[8, 16],
        local_features=8,
        siren_hidden_features=16,
        siren_hidden_layers=1,
        hyper_hidden_features=32,
        hyper_hidden_layers=1,
    )
    return ModelConfig(**(fields | overrides))


@pytest.fixture(scope="module", params=["unet", "conv", "set"])
def model(request):
    torch.manual_seed(0)
    return HyperSiren(small_config(encoder=request.param)).eval()


def test_forward_shapes(model, batch):
    image, mask = batch
    prediction = model(image, mask, torch.rand(2, 30, 2) * 2 - 1)
    assert prediction.values.shape == (2, 30, 3)
    assert prediction.latent.shape == (2, 16)
    assert [tuple(layer.weight.shape) for layer in prediction.params] == [(2, 2, 16), (2, 16, 16), (2, 16, 3)]
    assert not torch.allclose(prediction.values[0], prediction.values[1])


def test_forward_renders_the_params_it_returns(model, batch):
    image, mask = batch
    coords = torch.rand(2, 30, 2) * 2 - 1
    with torch.no_grad():
        prediction = model(image, mask, coords)
        local_grid = model.encode(image, mask).local_grid
        shifts = None if local_grid is None else model.decoder.modulator(sample_grid(local_grid, coords))
    torch.testing.assert_close(prediction.values, render(prediction.params, coords, 30.0, 30.0, shifts))


def test_latent_depends_only_on_observed_pixels(model, batch):
    image, mask = batch
    scrambled = torch.where(mask, image, torch.rand_like(image) * 2 - 1)
    with torch.no_grad():
        original = model.encode(image, mask)
        for scrambled_code, code in zip(model.encode(scrambled, mask), original):
            torch.testing.assert_close(scrambled_code, code)
        observed_changed = torch.where(mask, -image, image)
        assert not torch.allclose(model.encode(observed_changed, mask).global_latent, original.global_latent)


def test_a_nan_in_an_unobserved_pixel_never_reaches_the_output(model, batch):
    image, mask = batch
    with_nan = torch.where(mask, image, float("nan"))
    completed = model.inpaint(with_nan, mask)
    assert torch.isfinite(completed).all()
    torch.testing.assert_close(completed, model.inpaint(image, mask))


def test_raw_inpaint_at_input_size_equals_forward_on_cell_centres(model, batch):
    image, mask = batch
    completed = model.inpaint(image, mask, raw=True, supersample=1)
    assert completed.shape == image.shape
    with torch.no_grad():
        values = model(image, mask, cell_centres((HEIGHT, WIDTH)).expand(2, -1, -1)).values
    torch.testing.assert_close(completed, rearrange(values, "b (h w) c -> b c h w", h=HEIGHT, w=WIDTH))


def test_inpaint_at_another_size_renders_the_same_continuous_image(model, batch):
    image, mask = batch
    size = (2 * HEIGHT, 3 * WIDTH)
    completed = model.inpaint(image, mask, size=size, raw=True, supersample=1)
    assert completed.shape == (2, 3, *size)
    with torch.no_grad():
        values = model(image, mask, cell_centres(size).expand(2, -1, -1)).values
    torch.testing.assert_close(completed, rearrange(values, "b (h w) c -> b c h w", h=size[0], w=size[1]))


def test_inpaint_keeps_the_observed_pixels_and_clamps_by_default(model, batch):
    image, mask = batch
    raw = model.inpaint(image, mask, raw=True)
    assert not torch.equal(raw.where(mask, 0.0), image.where(mask, 0.0))  # raw re-renders the observed pixels
    default = model.inpaint(image, mask)
    assert torch.equal(default.where(mask, 0.0), image.where(mask, 0.0))
    torch.testing.assert_close(default, torch.where(mask, image, raw).clamp(-1, 1))
    bright = model.inpaint(image.clamp(max=0.99), mask, size=(2 * HEIGHT, 2 * WIDTH))  # no pasting at another size
    assert bright.abs().max() <= 1.0


def test_a_supersampled_pixel_is_the_mean_of_the_function_over_its_area(model, batch):
    image, mask = batch
    points = model.inpaint(image, mask, size=(3 * HEIGHT, 3 * WIDTH), raw=True, supersample=1)
    torch.testing.assert_close(model.inpaint(image, mask, raw=True, supersample=3), F.avg_pool2d(points, 3))


def test_chunked_inpaint_equals_unchunked(model, batch):
    image, mask = batch
    torch.testing.assert_close(model.inpaint(image, mask, chunk_size=7), model.inpaint(image, mask))


def test_render_stays_float32_under_autocast(model, batch):
    image, mask = batch
    coords = torch.rand(2, 30, 2) * 2 - 1
    with torch.no_grad():
        latents = model.encode(image, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            params = model.decoder.hypernet(latents.global_latent)  # bf16 under autocast
            values = model.values(latents, coords)
        fp32_params = [type(layer)(*(t.float() for t in layer)) for layer in params]
        expected = render(fp32_params, coords, 30.0, 30.0, model.decoder.shifts(latents.local_grid, coords))
    assert params[0].weight.dtype == torch.bfloat16 and values.dtype == torch.float32
    torch.testing.assert_close(values, expected)  # the sines themselves ran in fp32


def test_unknown_encoder_raises():
    with pytest.raises(ValueError, match="model.encoder='transformer' must be one of 'unet', 'conv', 'set'"):
        HyperSiren(small_config(encoder="transformer"))


@pytest.mark.parametrize(
    ("image_shape", "mask_shape", "message"),
    [
        ((2, 1, HEIGHT, WIDTH), (2, 1, HEIGHT, WIDTH), r"image must be \(B, 3, H, W\)"),
        ((3, HEIGHT, WIDTH), (1, HEIGHT, WIDTH), r"image must be \(B, 3, H, W\)"),
        ((2, 3, HEIGHT, WIDTH), (2, 1, HEIGHT, WIDTH + 1), r"mask must be \(B, 1, H, W\) matching image"),
        ((2, 3, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH), r"mask must be \(B, 1, H, W\) matching image"),
        ((2, 3, HEIGHT, WIDTH), (2, 3, HEIGHT, WIDTH), r"mask must be \(B, 1, H, W\) matching image"),
    ],
)
def test_rejects_mismatched_image_and_mask(model, image_shape, mask_shape, message):
    with pytest.raises(ValueError, match=message):
        model.inpaint(torch.zeros(image_shape), torch.ones(mask_shape, dtype=torch.bool))


def test_empty_mask_names_the_image(model, batch):
    image, mask = batch
    mask = mask.clone()
    mask[1] = False
    with pytest.raises(ValueError, match=r"observes no pixel in images \[1\]"):
        model.encode(image, mask)  # the user's entry; forward, the training step's, trusts its batch


def test_rejects_coords_of_wrong_shape(model, batch):
    image, mask = batch
    with pytest.raises(ValueError, match="3 dims per point but the SIREN takes 2"):
        model(image, mask, torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="params are for 2 samples but coords for 3"):
        model(image, mask, torch.zeros(3, 5, 2))


def test_local_codes_are_interpolated_exactly_at_pixel_centres():
    grid = torch.randn(2, 5, HEIGHT, WIDTH)
    sampled = sample_grid(grid, cell_centres((HEIGHT, WIDTH)).expand(2, -1, -1))
    torch.testing.assert_close(sampled, rearrange(grid, "b f h w -> b (h w) f"))
    halfway = torch.tensor([[[-1 + 1 / HEIGHT, -1 + 2 / WIDTH]]]).expand(2, -1, -1)  # between columns 0 and 1 of row 0
    torch.testing.assert_close(sample_grid(grid, halfway)[:, 0], grid[:, :, 0, :2].mean(dim=-1))


def test_local_model_renders_different_values_where_the_context_differs_locally(batch):
    torch.manual_seed(0)
    model = HyperSiren(small_config(encoder="unet")).eval()
    image, _ = batch
    mask = torch.ones(2, 1, HEIGHT, WIDTH, dtype=torch.bool)
    changed = image.clone()
    changed[:, :, 0, 0] = -changed[:, :, 0, 0]
    with torch.no_grad():
        difference = (model.inpaint(changed, mask) - model.inpaint(image, mask)).abs().amax(dim=1)  # (B, H, W)
    assert difference[:, 0, 0].min() > 10 * difference[:, -1, -1].max()  # the change shows where it was made


def test_float_masks_of_zeros_and_ones_are_the_bool_mask(model, batch):
    image, mask = batch
    torch.testing.assert_close(model.inpaint(image, mask.float()), model.inpaint(image, mask))


@pytest.mark.parametrize("value", [255.0, 0.5, -1.0, float("nan")])
def test_masks_that_are_not_zero_or_one_are_refused_not_used_as_weights(model, batch, value):
    image, mask = batch
    with pytest.raises(ValueError, match="mask must be bool or hold only 0 and 1"):
        model.inpaint(image, mask.float() * value)


@pytest.mark.parametrize("scale", [255.0, 2.0])
def test_images_outside_model_space_are_refused_naming_to_model_space(model, batch, scale):
    image, mask = batch
    with pytest.raises(ValueError, match=r"outside the model's \[-1, 1\].*to_model_space"):
        model.inpaint((image + 1) / 2 * scale, mask)
    with pytest.raises(ValueError, match="floating point.*to_model_space"):
        model.inpaint(((image + 1) * 127.5).to(torch.uint8), mask)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_observed_pixels_are_refused(model, batch, value):
    image, mask = batch
    image = torch.where(mask, image, 0.0)
    image[0, 1].view(-1)[mask[0, 0].flatten().nonzero()[0]] = value  # one observed pixel, one channel
    with pytest.raises(ValueError, match="NaN or inf at observed pixels"):
        model.inpaint(image, mask)


def test_unobserved_pixels_may_hold_anything(model, batch):
    image, mask = batch
    model.inpaint(torch.where(mask, image, 300.0), mask)  # out of range but unobserved: accepted
    model.inpaint(torch.where(mask, image, float("nan")), mask)  # NaN marks "missing": accepted


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, image, mask: m.inpaint(image[:0], mask[:0]), r"image \(0, 3, 8, 6\) holds no point"),
        (lambda m, image, mask: m.inpaint(image, mask, size=(0, 4)), r"size must be \(H, W\), 2 integers"),
        (lambda m, image, mask: m.inpaint(image, mask, size=(4.5, 4)), r"2 integers >= 1, got \(4.5, 4\)"),
        (lambda m, image, mask: m.inpaint(image, mask, size=16), r"2 integers >= 1, got 16: e.g. size=\(64, 64\)"),
        (lambda m, image, mask: m.inpaint(image, mask, chunk_size=0), r"chunk_size must be an integer >= 1"),
        (lambda m, image, mask: m(image, mask, torch.zeros(2, 0, 2)), r"hold no point \(N = 0\)"),
    ],
    ids=["batch 0", "size 0", "float size", "int size", "chunk 0", "no points"],
)
def test_unusable_arguments_raise_a_value_error_naming_the_fix(model, batch, call, message):
    with pytest.raises(ValueError, match=message):
        call(model, *batch)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_images_of_another_float_dtype_are_cast(model, batch, dtype):
    image, mask = batch
    expected = model.inpaint(image.to(dtype).float(), mask)
    torch.testing.assert_close(model.inpaint(image.to(dtype), mask).float(), expected)


@pytest.mark.parametrize(
    "field, message",
    [
        ({"latent_dim": 0}, "model.latent_dim=0 must be in \\[1, 32768\\]"),
        ({"siren_hidden_features": -1}, "model.siren_hidden_features=-1 must be in \\[1, 32768\\]"),
        ({"omega": float("nan")}, "model.omega=nan must be a number in \\(0, 10000\\]"),
        ({"encoder_widths": []}, r"model.encoder_widths=\[\] must be a list of 1 to 10 widths"),
        ({"local_features": 3}, "model.local_features=3 must exceed model.channels=3"),
    ],
)
def test_an_invalid_model_config_is_a_value_error_naming_the_field(field, message):
    with pytest.raises(ValueError, match=f"invalid ModelConfig: {message}"):
        HyperSiren(small_config(**field))
