"""What the single-signal fit programs (train/fit_*.py) share once their options (``cli.add_fit_options``) are parsed:
the output folder, checked and claimed, the memory check and the seeded SIREN."""

import argparse
from pathlib import Path

import torch

from hypersiren.across.memory import require_memory
from hypersiren.across.run_folder import LOCK
from hypersiren.core.siren import Siren
from hypersiren.errors import ConfigError
from hypersiren.results import require_own_folder, write_json


def seeded_siren(args: argparse.Namespace, in_features: int) -> Siren:
    """The fit programs' SIREN from their options, reseeded so that every fit starts from the same weights."""
    torch.manual_seed(args.seed)
    siren = Siren(
        in_features=in_features,
        hidden_features=args.hidden,
        hidden_layers=args.layers,
        out_features=1,
        first_omega=args.omega,
        hidden_omega=args.omega,
    )
    return siren.to(args.device)


def start_run(args: argparse.Namespace, program: str) -> Path:
    """Create the program's ``args.out`` folder and save its arguments there as ``config.json``, naming ``program``.

    A folder that holds anything else is refused before anything is written (``require_fit_folder``).
    """
    out = Path(args.out)
    require_fit_folder(out, program)
    write_json(vars(args) | {"program": program}, out / "config.json")
    return out


def require_fit_folder(out: Path, program: str) -> None:
    """``ConfigError`` unless ``out`` is a new or empty folder or an earlier output of the fit ``program`` (its
    config.json names it): a fit writes config.json and its results there, which would replace a training run's,
    another program's or the user's own files."""
    if out.is_dir() and any((out / name).exists() for name in ("checkpoint.pt", LOCK)):
        raise ConfigError(
            f"--out {out} holds a training run (checkpoint.pt or {LOCK}): a fit would replace its files; "
            "choose another --out"
        )
    require_own_folder(out, program, marker="config.json", what="fit's config.json")


def require_fit_memory(needed: float, device: str, what: str) -> None:
    """Refuse a fit whose estimated memory (``fitting.fit_bytes``) exceeds ``device``'s, before anything is written."""
    require_memory(needed, device=device, what=what, fix="lower --size (or the point counts), --hidden or --layers")
