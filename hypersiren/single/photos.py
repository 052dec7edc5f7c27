"""Real photographs bundled with scikit-image, for single-signal fits.

``skimage.data.camera()`` (512x512 grayscale) and ``skimage.data.astronaut()``
(512x512 RGB) ship inside scikit-image, one of hypersiren's dependencies, so
nothing is downloaded.
Photos are returned as uint8 like every image in hypersiren, so
``pixels.to_model_space`` maps them to the [-1, 1] the SIREN is fitted in.
"""

import skimage.data
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from hypersiren.core.checks import require_count

# ITU-R BT.709 luma, the weights of skimage.color.rgb2gray.
_LUMA = torch.tensor([0.2125, 0.7154, 0.0721])


def load_photo(name: str = "camera", size: int | None = None, grayscale: bool = True) -> Tensor:
    """A bundled skimage photo as uint8 ``(C, H, W)``, C = 1 if ``grayscale`` else 3.

    ``size`` centre-crops to a square and resizes with antialiasing (an area
    average of the original pixels, not a point sample of them), so a 64x64
    camera is a faithful thumbnail of the 512x512 one.
    """
    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(f"skimage.data has no photo {name!r}: try 'camera' or 'astronaut'")
    image = torch.from_numpy(loader()).float()
    image = image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)[:3]
    if grayscale and image.shape[0] == 3:
        image = torch.einsum("chw,c->hw", image, _LUMA).unsqueeze(0)
    elif not grayscale and image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if size is not None:
        require_count(size, "size", low=1)
        short_side = min(image.shape[-2:])
        image = TF.center_crop(image, [short_side, short_side])
        image = TF.resize(image, [size, size], antialias=True)
    return image.round().clamp(0, 255).to(torch.uint8).contiguous()
