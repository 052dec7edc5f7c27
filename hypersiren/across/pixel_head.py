"""The ablation decoder: the U-Net's local code -> a colour per pixel, no hypernetwork, no SIREN.

It answers a reviewer's first question about HyperSiren: how much do the generated
function and its rendering add over the same encoder with a plain pixel head? It
renders only its own pixel grid (``HyperSiren.inpaint`` upsamples it bicubically for
another size).
"""

from torch import Tensor, nn


class PixelHead(nn.Module):
    """Local codes ``(B, F, H, W)`` -> image ``(B, C, H, W)``: a correction of the code's colour guess.

    The code's last ``C`` channels are the encoder's pull-push fill (the observed pixel
    where there is one), as for the SIREN decoder's passthrough shift; a two-layer 1×1
    convolution learns a correction to it, starting at zero.
    """

    def __init__(self, local_features: int, image_channels: int, hidden_features: int = 64):
        super().__init__()
        self.image_channels = image_channels
        self.correction = nn.Sequential(
            nn.Conv2d(local_features, hidden_features, 1), nn.ReLU(), nn.Conv2d(hidden_features, image_channels, 1)
        )
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def forward(self, local_grid: Tensor) -> Tensor:
        """``(B, F, H, W)`` -> ``(B, C, H, W)``."""
        return local_grid[:, -self.image_channels :] + self.correction(local_grid)
