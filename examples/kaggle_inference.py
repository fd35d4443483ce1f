"""Kaggle PANDA inference: a folder of test slides in, submission.csv out.

    python examples/kaggle_inference.py --models run/best.h5 [more.h5 ...] \
        --data /kaggle/input/prostate-cancer-grade-assessment --out submission.csv

--data holds test.csv and test_images/ (Kaggle's layout) or *.tiff slides. Kaggle hides the test
images while a notebook is saved: then the sample submission is copied, as Kaggle expects.
"""
import argparse
import pathlib
import shutil

import slidegrade

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", required=True, help="trained best.h5 files (several: an ensemble)")
parser.add_argument("--data", required=True, help="the competition folder, or a folder of .tiff slides")
parser.add_argument("--out", default="submission.csv")
parser.add_argument("--tta", default="flips", help="none, flips or dihedral")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

data = pathlib.Path(args.data)
if (data / "test.csv").is_file() and not (data / "test_images").is_dir():
    shutil.copy(data / "sample_submission.csv", args.out)
    print(f"no test_images/ in {data}: copied the sample submission to {args.out}")
else:
    rows = slidegrade.grade(args.models, data, tta=args.tta, out=args.out, device=args.device)
    for row in rows:
        if not row["ok"]:
            print(f"{row['image_id']}: not graded (grade 0 written): {row['error']}")
    print(f"graded {sum(r['ok'] for r in rows)} of {len(rows)} slides -> {args.out}")
