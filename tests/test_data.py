import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hypersiren.across import data, memory
from hypersiren.across import images as image_files
from hypersiren.across.config import DataConfig, TrainConfig
from hypersiren.across.data import ShuffledBatches, fine_grid_points, load_images, training_batch
from hypersiren.across.images import decode_image, square_resize
from hypersiren.across.objective import missing_log_mse
from hypersiren.core.coordinates import cell_centres
from hypersiren.core.pixels import to_model_space, to_unit_range
from hypersiren.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]


def test_celeba_standard_folder_official_split(celeba_root):
    train = load_images(DataConfig("celeba", str(celeba_root), 32), "train")
    val = load_images(DataConfig("celeba", str(celeba_root), 32), "val")
    assert train.shape == (4560, 3, 32, 32) and val.shape == (780, 3, 32, 32)
    assert train.dtype == torch.uint8
    # Faces are centred: after the 178 crop the centre is brighter (skin) than the background corners on average.
    mean = train.float().mean(dim=(0, 1))
    assert mean[12:20, 12:20].mean() > mean[:4, :4].mean()


def test_celeba_64_is_the_32_image_at_higher_resolution(celeba_root):
    small = load_images(DataConfig("celeba", str(celeba_root), 32), "val", limit=4).float()
    large = load_images(DataConfig("celeba", str(celeba_root), 64), "val", limit=4).float()
    assert large.shape == (4, 3, 64, 64)
    downsampled = torch.nn.functional.avg_pool2d(large, 2)
    assert (downsampled - small).abs().mean() < 4.0  # out of 255: same crop, same content


def test_cifar10_image_folder(cifar10_root):
    test = load_images(DataConfig("cifar10", str(cifar10_root), 32), "test", limit=50)
    assert test.shape == (50, 3, 32, 32) and test.dtype == torch.uint8
    assert 60 < test.float().mean() < 190  # real photographs, not blank decodes


def test_folder_dataset_split_is_disjoint_and_complete(tmp_path, cifar10_root):
    for index, source in enumerate(sorted((cifar10_root / "test" / "cat").glob("*.jpg"))[:20]):
        shutil.copy(source, tmp_path / f"{index:02d}.jpg")
    config = DataConfig("folder", str(tmp_path), 16)
    train, val = load_images(config, "train"), load_images(config, "val")
    assert (len(train), len(val)) == (18, 2) and train.shape[1:] == (3, 16, 16)


def test_missing_dataset_says_what_to_put_where(tmp_path):
    with pytest.raises(DatasetError, match="img_align_celeba.*list_eval_partition.txt"):
        load_images(DataConfig("celeba", str(tmp_path)), "train")
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_images(DataConfig("cifar10", str(tmp_path)), "train")


def test_incomplete_celeba_names_missing_files(tmp_path, celeba_root):
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n")
    shutil.copy(celeba_root / "img_align_celeba" / "000002.jpg", tmp_path / "img_align_celeba")
    with pytest.raises(DatasetError, match="1 of 2 .* missing .* 000001.jpg"):
        load_images(DataConfig("celeba", str(tmp_path)), "train")


def test_corrupt_image_is_named(tmp_path):
    for index in range(9):
        Image.new("RGB", (4, 4)).save(tmp_path / f"ok_{index}.png")
    (tmp_path / "good.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match="good.png.*corrupt"):
        load_images(DataConfig("folder", str(tmp_path)), "train")


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_folder_too_small_for_a_validation_split_says_so(tmp_path, split):
    for index in range(9):  # every 10th image is 'val': none here, and a training needs one to score
        Image.new("RGB", (4, 4)).save(tmp_path / f"{index}.png")
    with pytest.raises(DatasetError, match="holds 9 images: too few for a 'val' split .* at least 10"):
        load_images(DataConfig("folder", str(tmp_path)), split)


@pytest.mark.parametrize("dataset", ["celeba", "cifar10", "folder"])
def test_a_root_that_is_a_file_is_called_a_file(tmp_path, dataset):
    (tmp_path / "celeba.zip").write_bytes(b"PK")
    with pytest.raises(DatasetError, match=r"data.root .*celeba.zip is a file, not a folder"):
        load_images(DataConfig(dataset, str(tmp_path / "celeba.zip"), cache=""), "train")


@pytest.mark.parametrize("oddity", ["folder", "broken link", "fifo"])
def test_a_folder_entry_named_as_an_image_but_no_file_is_named_before_decoding(tmp_path, oddity):
    for index in range(12):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{index:02d}.png")
    odd = tmp_path / "sub" / "05b.png"
    odd.parent.mkdir()
    {"folder": odd.mkdir, "broken link": lambda: odd.symlink_to(tmp_path / "gone"), "fifo": lambda: os.mkfifo(odd)}[
        oddity
    ]()
    with pytest.raises(DatasetError, match=r"1 entries under .* are named as images but are no readable file .*05b"):
        load_images(DataConfig("folder", str(tmp_path), cache=""), "train")


@pytest.mark.parametrize(
    "line", ["000001.jpg", "000001.jpg 0 extra", "000001.jpg train", "000001.jpg 7"], ids=["1", "3", "word", "code"]
)
def test_a_malformed_partition_file_names_its_line(tmp_path, line):
    (tmp_path / "img_align_celeba").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img_align_celeba" / "000000.jpg")
    (tmp_path / "list_eval_partition.txt").write_text(f"000000.jpg 0\n\n{line}\n")
    with pytest.raises(DatasetError, match=r"list_eval_partition.txt line 3 is .*not 'NNNNNN.jpg CODE'"):
        load_images(DataConfig("celeba", str(tmp_path), 4), "train")


def test_value_ranges():
    pixels = torch.tensor([0, 255, 128], dtype=torch.uint8)
    assert torch.allclose(to_model_space(pixels), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]), atol=1e-6)
    assert torch.allclose(to_unit_range(to_model_space(pixels)), pixels / 255.0)
    assert to_unit_range(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 1.0]


def test_shuffled_batches_are_epoch_permutations_and_replayable():
    batches = ShuffledBatches(num_images=10, batch_size=3, seed=7)
    epoch = torch.cat([batches.indices(step) for step in range(3)])
    assert len(set(epoch.tolist())) == 9  # no repeats within an epoch (last partial batch dropped)
    assert not torch.equal(batches.indices(3), batches.indices(0))  # a new permutation next epoch
    fresh = ShuffledBatches(num_images=10, batch_size=3, seed=7)
    assert torch.equal(fresh.indices(4), batches.indices(4))  # a pure function of (seed, step)
    with pytest.raises(ValueError, match="exceeds"):
        ShuffledBatches(num_images=2, batch_size=3, seed=0)


def test_training_batch_is_the_indexed_images_with_replayable_contexts():
    images = torch.randint(0, 256, (10, 3, 4, 5), dtype=torch.uint8)
    batches = ShuffledBatches(num_images=10, batch_size=3, seed=7)
    image, mask, coords, target, observed = training_batch(images, batches, step=4, min_context=2, max_context=6)
    assert torch.equal(image, to_model_space(images[batches.indices(4)]))
    assert torch.equal(coords, cell_centres((4, 5)).expand(3, -1, -1)) and torch.equal(target, image.flatten(2).mT)
    assert torch.equal(observed, mask.flatten(1))
    assert mask.shape == (3, 1, 4, 5) and mask.dtype == torch.bool
    assert all(2 <= count <= 6 for count in mask.flatten(1).sum(1).tolist())
    fresh = ShuffledBatches(num_images=10, batch_size=3, seed=7)
    replayed_image, replayed_mask, *_ = training_batch(images, fresh, step=4, min_context=2, max_context=6)
    assert torch.equal(replayed_image, image) and torch.equal(replayed_mask, mask)  # resuming sees the same batch
    next_mask = training_batch(images, batches, step=5, min_context=2, max_context=6).mask
    assert not torch.equal(next_mask, mask)


def test_fine_grid_points_are_pixels_of_the_fine_image():
    fine = torch.arange(2 * 3 * 8 * 6, dtype=torch.float32).view(2, 3, 8, 6)  # every value names its pixel
    coords, target = fine_grid_points(fine, num_points=200, generator=torch.Generator().manual_seed(0))
    assert coords.shape == (2, 200, 2) and target.shape == (2, 200, 3)
    rows = ((coords[..., 0] + 1) / 2 * 8 - 0.5).round().long()  # pixel centre -> fine row / col
    cols = ((coords[..., 1] + 1) / 2 * 6 - 0.5).round().long()
    torch.testing.assert_close(coords, torch.stack([(rows + 0.5) / 4 - 1, (cols + 0.5) / 3 - 1], dim=-1))
    for image in range(2):
        torch.testing.assert_close(target[image], fine[image][:, rows[image], cols[image]].T)
    assert len(set((rows[0] * 6 + cols[0]).tolist())) > 30  # spread over the image


def rescaled_celeba_copy(celeba_root, copy_root, count, transform):
    """The first ``count`` CelebA val images, each passed through ``transform`` (a PIL image -> PIL image),
    in CelebA's layout under ``copy_root`` as its train split; PNG inside, so no JPEG loss is added."""
    (copy_root / "img_align_celeba").mkdir(parents=True)
    lines = [line.split() for line in (celeba_root / "list_eval_partition.txt").read_text().splitlines()]
    names = [name for name, code in lines if code == "1"][:count]
    for name in names:
        with Image.open(celeba_root / "img_align_celeba" / name) as image:
            transform(image.convert("RGB")).save(copy_root / "img_align_celeba" / name, format="PNG")
    (copy_root / "list_eval_partition.txt").write_text("".join(f"{name} 0\n" for name in names))


@pytest.mark.parametrize(
    "transform",
    [
        lambda image: image.resize((89, 109), Image.LANCZOS),  # a half-size copy of the 178x218 originals
        lambda image: image.crop((0, 20, 178, 198)).resize((64, 64), Image.LANCZOS),  # already cropped to 64x64
    ],
    ids=["89x109", "64x64"],
)
def test_smaller_celeba_copies_are_cropped_like_the_originals_never_padded(tmp_path, celeba_root, transform):
    rescaled_celeba_copy(celeba_root, tmp_path, 4, transform)
    copy = load_images(DataConfig("celeba", str(tmp_path), 32), "train").float()
    original = load_images(DataConfig("celeba", str(celeba_root), 32), "val", limit=4).float()
    assert copy.shape == original.shape == (4, 3, 32, 32)
    assert copy[..., :4, :].mean() > 20  # no black band where a fixed 178 crop would pad
    assert (copy - original).abs().mean() < 2.0  # out of 255: the same framing as the standard crop


def test_a_split_too_large_for_memory_is_refused_before_decoding_without_a_cache(celeba_root, monkeypatch):
    monkeypatch.setattr(memory, "physical_memory", lambda: 2**30)

    def decode(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(image_files, "_decode", decode)
    with pytest.raises(DatasetError, match=r"4560 images at 1024x1024 take 13.4 GiB .*lower data.image_size"):
        load_images(DataConfig("celeba", str(celeba_root), 1024, cache=""), "train")


def test_a_decoded_split_is_cached_once_and_decoded_again_when_its_files_change(tmp_path, celeba_root, monkeypatch):
    rescaled_celeba_copy(celeba_root, tmp_path / "faces", 12, lambda image: image)
    config = DataConfig("celeba", str(tmp_path / "faces"), 16, cache=str(tmp_path / "cache"))
    first = load_images(config, "train")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    decoded = []
    monkeypatch.setattr(
        image_files, "decode_image", lambda file, decode=image_files.decode_image: decoded.append(file) or decode(file)
    )
    assert torch.equal(load_images(config, "train"), first) and not decoded  # the second load reads the cache

    folder, partition = tmp_path / "faces" / "img_align_celeba", tmp_path / "faces" / "list_eval_partition.txt"
    names = [line.split()[0] for line in partition.read_text().splitlines()]
    with Image.open(folder / names[2]) as image:  # PNG inside: the flip is exact
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / names[2], format="PNG")
    flipped = load_images(config, "train")
    assert decoded and torch.equal(flipped[2], first[2].flip(-1))
    assert torch.equal(flipped[3:], first[3:]) and torch.equal(flipped[:2], first[:2])

    shutil.copy(folder / names[0], folder / "999999.jpg")
    partition.write_text(partition.read_text() + "999999.jpg 0\n")  # one more file in the split
    assert torch.equal(load_images(config, "train")[-1], first[0])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3


def test_a_cache_that_cannot_be_written_or_read_loses_nothing(tmp_path, celeba_root, capsys):
    rescaled_celeba_copy(celeba_root, tmp_path / "faces", 4, lambda image: image)
    (tmp_path / "not_a_folder").write_text("")
    expected = load_images(DataConfig("celeba", str(tmp_path / "faces"), 8, cache=""), "train")
    unwritable = DataConfig("celeba", str(tmp_path / "faces"), 8, cache=str(tmp_path / "not_a_folder"))
    assert torch.equal(load_images(unwritable, "train"), expected)
    assert "warning: cannot cache decoded images" in capsys.readouterr().err
    cached = DataConfig("celeba", str(tmp_path / "faces"), 8, cache=str(tmp_path / "cache"))
    load_images(cached, "train")
    [file] = (tmp_path / "cache").glob("*.npy")
    file.write_bytes(file.read_bytes()[:100])  # torn
    assert torch.equal(load_images(cached, "train"), expected)


def test_a_relative_root_is_found_from_any_working_directory(tmp_path, monkeypatch, celeba_root):
    relative = os.path.relpath(celeba_root, REPO)  # as a preset names it, e.g. ../shared/data/celeba
    monkeypatch.chdir(tmp_path)
    assert load_images(DataConfig("celeba", relative, 8), "val", limit=2).shape == (2, 3, 8, 8)


GRADIENT_16_BIT = np.linspace(0, 65535, 256).round().astype(np.uint16)  # one row, black to white
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def write_16_bit_gradient(path: Path) -> None:
    """8 rows of ``GRADIENT_16_BIT``; PIL opens the PNG as mode "I;16" and the 16-bit PGM as "I"."""
    Image.fromarray(np.tile(GRADIENT_16_BIT, (8, 1))).save(path)


@pytest.mark.parametrize("suffix", [".png", ".pgm"])
def test_16_bit_gray_is_scaled_by_its_depth_not_clipped(tmp_path, suffix):
    write_16_bit_gradient(tmp_path / f"gradient{suffix}")
    image = decode_image(tmp_path / f"gradient{suffix}")
    assert image.shape == (3, 8, 256) and image.dtype == torch.uint8
    expected = torch.from_numpy(GRADIENT_16_BIT.astype(np.float64) * 255 / 65535)
    assert (image[:, 3].double() - expected).abs().max() <= 1
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])


def test_a_folder_of_16_bit_pngs_is_not_decoded_white(tmp_path):
    for index in range(10):
        write_16_bit_gradient(tmp_path / f"{index}.png")
    images = load_images(DataConfig("folder", str(tmp_path), 8), "train")
    assert images.shape == (9, 3, 8, 8) and 120 < images.float().mean() < 135  # a gradient's mean, not white


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([*RED, *BLUE])
    image.putpixel((0, 0), 1)
    image.save(tmp_path / "palette.png", transparency=1)  # palette entry 1 (blue) is transparent
    decoded = decode_image(tmp_path / "palette.png")
    assert decoded[:, 0, 0].tolist() == list(WHITE) and decoded[:, 1, 3].tolist() == list(RED)


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.zeros((2, 3, 4), dtype=np.uint8)  # black, transparent
    pixels[0, 0] = (*BLUE, 255)  # opaque blue
    pixels[1, 0, 3] = 128  # half-transparent black
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "rgba.png")
    decoded = decode_image(tmp_path / "rgba.png")
    assert decoded[:, 0, 0].tolist() == list(BLUE) and decoded[:, 0, 1].tolist() == list(WHITE)
    assert all(abs(value - 127) <= 1 for value in decoded[:, 1, 0].tolist())


@pytest.mark.parametrize("mode", ["L", "1", "LA"])
def test_grayscale_is_expanded_to_rgb(tmp_path, mode):
    value = {"L": 100, "1": 255, "LA": (100, 255)}[mode]
    Image.new(mode, (3, 2), value).save(tmp_path / "gray.png")
    assert decode_image(tmp_path / "gray.png").unique().tolist() == [255 if mode == "1" else 100]


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)  # no cyan or black: red
    red, green, blue = decode_image(tmp_path / "cmyk.jpg").float().mean(dim=(1, 2)).tolist()
    assert red > 240 and green < 15 and blue < 15


def test_exif_orientation_is_applied(tmp_path):
    landscape = Image.new("RGB", (40, 20), BLUE)
    landscape.paste(RED, (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown rotated 90 degrees clockwise, as phones store portraits
    landscape.save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    decoded = decode_image(tmp_path / "portrait.jpg").float()
    assert decoded.shape == (3, 40, 20)  # tall, as a viewer shows it
    assert decoded[0, :15].mean() > 240 and decoded[2, :15].mean() < 15  # the left half turned to the top
    assert decoded[2, 25:].mean() > 240 and decoded[0, 25:].mean() < 15


def test_truncated_and_foreign_files_are_named(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:3000])
    with pytest.raises(DatasetError, match="cut.png .*truncated"):
        decode_image(tmp_path / "cut.png")
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(DatasetError, match="notes.jpg is corrupt or not an image"):
        decode_image(tmp_path / "notes.jpg")
    with pytest.raises(DatasetError, match="no image file at .*absent.png"):
        decode_image(tmp_path / "absent.png")


@pytest.mark.parametrize("side", [12, 20], ids=["above the limit (PIL warns)", "twice above it (PIL raises)"])
def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch, side):
    Image.new("RGB", (side, side)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DatasetError, match="huge.png is too large to decode safely.*downscale it"):
        decode_image(tmp_path / "huge.png")


def test_pixels_of_no_fixed_range_are_refused_by_name(tmp_path):
    Image.new("F", (4, 4), 0.5).save(tmp_path / "float.tif")
    with pytest.raises(DatasetError, match="float.tif holds floating-point pixels"):
        decode_image(tmp_path / "float.tif")
    Image.new("I", (4, 4), 100_000).save(tmp_path / "int32.tif")
    with pytest.raises(DatasetError, match="int32.tif holds 32-bit integer pixels"):
        decode_image(tmp_path / "int32.tif")


def test_square_resize_crops_the_centre_and_keeps_mask_values_when_nearest():
    mask = torch.zeros(1, 6, 10, dtype=torch.uint8)
    mask[:, :, 5:] = 255  # right half of a landscape mask
    resized = square_resize(mask, 3, nearest=True)
    assert resized.shape == (1, 3, 3) and set(resized.unique().tolist()) == {0, 255}
    assert resized[0, :, 0].tolist() == [0, 0, 0] and resized[0, :, 2].tolist() == [255, 255, 255]


def test_query_points_are_the_missing_pixels_first_then_observed_ones():
    images = torch.randint(0, 256, (8, 3, 6, 6), dtype=torch.uint8)
    batches = ShuffledBatches(num_images=8, batch_size=4, seed=3)
    options = dict(min_context=5, max_context=30, top_half_fraction=0.5)
    every = training_batch(images, batches, step=2, **options)
    some = training_batch(images, batches, step=2, query_points=12, **options)
    assert torch.equal(some.mask, every.mask) and some.coords.shape == (4, 12, 2)
    for b in range(4):  # each query point is a pixel with its own value; missing pixels come first
        index = [every.coords[b].tolist().index(point) for point in some.coords[b].tolist()]
        assert len(set(index)) == 12
        assert torch.equal(some.target[b], every.target[b, index]) and torch.equal(
            some.observed[b], every.observed[b, index]
        )
        missing = int((~every.observed[b]).sum())
        assert int((~some.observed[b]).sum()) == min(12, missing)
    whole = training_batch(images, batches, step=2, query_points=36, **options)
    prediction = torch.randn(4, 36, 3, generator=torch.Generator().manual_seed(0))
    order = [[every.coords[b].tolist().index(point) for point in whole.coords[b].tolist()] for b in range(4)]
    shuffled = torch.stack([prediction[b, order[b]] for b in range(4)])
    torch.testing.assert_close(  # every pixel as query points: the loss of the full rendering
        missing_log_mse(shuffled, whole.target, whole.observed),
        missing_log_mse(prediction, every.target, every.observed),
    )


def test_a_shard_is_its_share_of_the_whole_batch():
    images = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    fine = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    batches = ShuffledBatches(num_images=8, batch_size=4, seed=1)
    options = dict(step=3, min_context=2, max_context=8, query_points=5, fine_images=fine, fine_points=7)
    whole = training_batch(images, batches, **options)
    half = training_batch(images, batches, shard=slice(2, 4), **options)
    assert whole.coords.shape == (4, 12, 2) and not whole.observed[:, 5:].any()  # fine points are never observed
    for mine, all_of_them in zip(half, whole):
        assert torch.equal(mine, all_of_them[2:4])


@pytest.mark.parametrize("top_half_fraction", [0.0, 1.0])
def test_a_recipe_batch_follows_every_field_of_the_training_config(top_half_fraction):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=generator)
    fine = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=generator)
    train = TrainConfig(
        min_context=5, max_context=5, top_half_fraction=top_half_fraction, query_points=7, fine_points=3
    )
    batches = ShuffledBatches(num_images=6, batch_size=4, seed=0)
    batch = data.recipe_batch(train, images, batches, step=0, fine_images=fine, shard=slice(1, 3))
    assert batch.coords.shape == (2, 7 + 3, 2) and batch.target.shape == (2, 10, 3)  # the shard of 4, 7 + 3 points
    contexts = batch.mask.flatten(1).sum(dim=1)
    assert (contexts == (32 if top_half_fraction else 5)).all()  # the top half of 8x8, else exactly 5 pixels
    assert not batch.observed[:, 7:].any()  # fine points lie between pixel centres: never context


def test_hflip_mirrors_about_half_the_images_and_their_fine_versions_alike():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 4, 6), dtype=torch.uint8, generator=generator)
    fine = images.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # the same images at 2x, exactly
    batches = ShuffledBatches(num_images=64, batch_size=64, seed=0)
    train = TrainConfig(min_context=5, max_context=5, hflip=True)
    batch = data.recipe_batch(train, images, batches, step=0, fine_images=fine)
    plain = to_model_space(images[batches.indices(0)])
    mirrored = (batch.image == plain.flip(-1)).flatten(1).all(dim=1)
    assert ((batch.image == plain).flatten(1).all(dim=1) | mirrored).all()  # each image as it is, or mirrored
    assert 16 < mirrored.sum() < 48  # about half
    fine_batch = data.training_batch(
        fine, batches, step=0, min_context=5, max_context=5, hflip=True
    ).image  # the same draw at 2x: the fine image of a mirrored image is mirrored too
    assert torch.equal(fine_batch[:, :, ::2, ::2], batch.image)
    assert torch.equal(data.recipe_batch(train, images, batches, step=0).image, batch.image)  # from (seed, step)
