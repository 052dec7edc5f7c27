"""Every result file is written atomically: a write that fails leaves the old file whole and no temporary."""

import errno
import os

import pytest
import torch

from hypersiren.across.config import RunConfig
from hypersiren.cli import describe
from hypersiren.figures import plot_curves, save_labeled_grid, save_png
from hypersiren.files import write_atomically, write_text
from hypersiren.results import write_curves_csv, write_json, write_results
from hypersiren.single.sdf import write_obj

WRITERS = {
    "json": lambda path: write_json({"psnr": 30.0}, path),
    "markdown": lambda path: write_results({"psnr": 30.0}, "| a |\n", path.parent, path.stem),
    "csv": lambda path: write_curves_csv({"psnr": [1.0, 2.0]}, path),
    "plot png": lambda path: plot_curves({"psnr": [1.0, 2.0]}, path),
    "grid png": lambda path: save_labeled_grid(torch.rand(2, 3, 4, 4), path, column_labels=["a", "b"]),
    "png": lambda path: save_png(torch.rand(1, 3, 4, 4), path),
    "obj": lambda path: write_obj(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), path),
    "config": lambda path: RunConfig().save(path),
}
SUFFIXES = {"json": ".json", "markdown": ".md", "csv": ".csv", "obj": ".obj", "config": ".json"}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_full_disk_leaves_every_kind_of_result_file_whole(tmp_path, monkeypatch, kind):
    path = tmp_path / f"result{SUFFIXES.get(kind, '.png')}"
    path.write_bytes(b"the previous result")

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as error:
        WRITERS[kind](path)
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(path)
    monkeypatch.undo()
    assert path.read_bytes() == b"the previous result"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    WRITERS[kind](path)  # and with space, the new file replaces it
    assert path.read_bytes() != b"the previous result"


def test_a_full_disk_inside_torch_save_is_named_as_a_full_disk(tmp_path):
    class FullDisk:
        """What a file on a full disk does: the first writes fit, then ENOSPC."""

        def __init__(self, file):
            self.file, self.writes = file, 0

        def write(self, data):
            self.writes += 1
            if self.writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def flush(self):
            self.file.flush()

    path = tmp_path / "checkpoint.pt"
    with pytest.raises(OSError) as error:  # torch raises a RuntimeError while handling the OSError
        write_atomically(path, lambda file: torch.save({"weights": torch.zeros(10_000)}, FullDisk(file)))
    assert describe(error.value) == f"No space left on device: {path} (free space on that disk, or write elsewhere)"
    assert list(tmp_path.iterdir()) == []


def test_other_failures_keep_their_type_and_leave_no_temporary(tmp_path):
    def unserializable(file):
        file.write(b"half")
        raise ValueError("bad value")

    with pytest.raises(ValueError, match="bad value"):
        write_atomically(tmp_path / "a.json", unserializable)
    assert list(tmp_path.iterdir()) == []
    write_text("text\n", tmp_path / "nested" / "b.txt")  # folders are created
    assert (tmp_path / "nested" / "b.txt").read_text() == "text\n"
