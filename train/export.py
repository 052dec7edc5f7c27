"""Export a trained run for sharing: weights, step and config without the optimizer state.

    python train/export.py --run runs/celeba32 --out pretrained/celeba32 --data.root ../shared/data/celeba

The exported folder is a run folder that every eval program reads (--run pretrained/celeba32);
training does not resume from it (no optimizer state): resume from the original run. A --out that
already holds a checkpoint is refused unless --replace is given; the run's own folder always is.
"""

import hypersiren.start  # noqa: F401  (first: Ctrl-C while torch loads is one line, not a traceback)

# isort: split
import argparse

from hypersiren.cli import exits_cleanly, parse_before_imports, program


def parse_args() -> argparse.Namespace:
    parser = program(__doc__)
    parser.add_argument("--run", required=True, help="run directory written by train/train.py")
    parser.add_argument("--out", required=True, help="folder of the exported run")
    parser.add_argument(
        "--data.root",
        dest="data_root",
        help="dataset folder the export names, kept as typed: relative to the repository, as in presets "
        "(default: the run's)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="overwrite a checkpoint already in --out (never the run's own), dropping the results and detail "
        "weights measured on it",
    )
    return parser.parse_args()


parse_before_imports(parse_args, __name__)

import shlex

from hypersiren.across.checkpoint import export_run


@exits_cleanly()
def main() -> None:
    args = parse_args()
    exported = export_run(args.run, args.out, data_root=args.data_root, replace=args.replace)
    print(
        f"wrote {exported} ({exported.stat().st_size / 2**20:.1f} MiB); evaluate it: "
        f"python eval/evaluate.py --run {shlex.quote(args.out)}"  # a command to paste: a space or quote is the shell's
    )


if __name__ == "__main__":
    main()
