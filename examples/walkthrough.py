"""slidegrade from Python, end to end: synthetic slides, a slide and its mosaic, training the demo
config, its curves, grading the held-out slides. Cells are marked `# %%` (VS Code, Jupyter via
jupytext, Spyder run them one by one); as a script it runs them all:

    python examples/walkthrough.py                          # the demo's data and config (minutes)
    python examples/walkthrough.py --slides 12 --width 1024 --height 512 --epochs 2 --tiles 4 --tile-size 32

Pictures go to --out (PNG files); with matplotlib installed they are also drawn (--show).
"""
# %% Settings
import argparse
import pathlib

import numpy as np

import slidegrade

parser = argparse.ArgumentParser(description="slidegrade walkthrough")
parser.add_argument("--out", default="walkthrough_out", help="folder for the data, the run and the pictures")
parser.add_argument("--slides", type=int, default=60, help="synthetic training slides")
parser.add_argument("--width", type=int, default=2048)
parser.add_argument("--height", type=int, default=1024)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--tiles", type=int, default=16)
parser.add_argument("--tile-size", type=int, default=64)
parser.add_argument("--show", action="store_true", help="draw the pictures with matplotlib")
args, _ = parser.parse_known_args()  # a notebook kernel adds arguments of its own
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)
print(f"slidegrade {slidegrade.__version__}; devices: {[d['name'] for d in slidegrade.devices()]}")

try:
    import matplotlib

    if not args.show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None  # pictures are still written as PNG files


def picture(name, image):
    """Saves a uint8 image as out/NAME.png, and draws it when matplotlib is there."""
    slidegrade.write_png(out / f"{name}.png", image)
    print(f"{name}: {image.shape[1]}x{image.shape[0]} -> {out / name}.png")
    if plt is not None and args.show:
        plt.figure()
        plt.imshow(image)
        plt.title(name)
        plt.axis("off")


# %% A synthetic PANDA-like dataset (train.csv, train_images/, masks, test_images/, test_truth.csv)
data = out / "data"
dataset = slidegrade.synth(data, slides=args.slides, test_slides=max(4, args.slides // 5), width=args.width,
                           height=args.height, seed=1)
print(f"{len(dataset['train'])} training and {len(dataset['test'])} test slides in {data}")

# %% One slide: its pyramid, a thumbnail, and the mosaic the model sees
first = next(s for s in dataset["train"] if s["isup_grade"] >= 3)
path = data / "train_images" / f"{first['image_id']}.tiff"
with slidegrade.Slide(path) as slide:
    print(f"{path.name}: ISUP {first['isup_grade']}, levels {slide.level_dimensions}")
    picture("thumbnail", slide.read_level(slide.level_count - 1))
mosaic, placements = slidegrade.tile(path, level=1, tiles=args.tiles, size=args.tile_size)
picture("mosaic", mosaic)
print(f"the darkest tile comes from level-1 x={placements[0]['x']} y={placements[0]['y']}")

# %% Train the demo config at this size (every key can be overridden, as on the command line)
events = []
# The repository's demo config (a notebook runs from the repository root: no __file__ there).
here = pathlib.Path(globals().get("__file__", "examples/walkthrough.py")).resolve()
run = slidegrade.train(here.parents[1] / "configs" / "demo.toml", data=data, out=out / "run", epochs=args.epochs,
                       tiles=args.tiles, tile_size=args.tile_size,
                       warmup_epochs=min(1, args.epochs - 1), folds=3,
                       progress=lambda e: events.append(e) if e["kind"] != "message" else None)
print(f"best validation QWK {run['best_qwk']} at epoch {run['best_epoch'] + 1}: {run['best_weights']}")

# %% Training curves (the run folder also holds curves.svg and metrics.csv)
epochs = [e for e in events if e["kind"] == "epoch"]
for e in epochs:
    qwk_text = "undefined" if e["val_qwk"] is None else f"{e['val_qwk']:.3f}"
    print(f"epoch {e['epoch'] + 1}: train loss {e['train_loss']:.4f}, validation loss {e['val_loss']:.4f}, "
          f"QWK {qwk_text}")
if plt is not None:
    x = [e["epoch"] + 1 for e in epochs]
    figure, (loss_axes, qwk_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axes.plot(x, [e["train_loss"] for e in epochs], label="train")
    loss_axes.plot(x, [e["val_loss"] for e in epochs], label="validation")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_title("loss")
    loss_axes.legend()
    qwk_axes.plot(x, [np.nan if e["val_qwk"] is None else e["val_qwk"] for e in epochs])
    qwk_axes.set_xlabel("epoch")
    qwk_axes.set_title("validation QWK")
    figure.savefig(out / "curves.png", dpi=80)
    print(f"curves -> {out / 'curves.png'}")

# %% Grade the held-out test slides and score them against their true grades
rows = slidegrade.grade(run["best_weights"], data, tta="flips", out=out / "submission.csv")
model = slidegrade.Model.load(run["best_weights"])
print(f"{model}: card {model.card['tiles']} tiles of {model.card['tile_size']} px, head {model.card['head']}")
score = slidegrade.evaluate(data / "test_truth.csv", out / "submission.csv")
print(f"test QWK {score['qwk']:.3f} over {score['slides']} slides (accuracy {score['accuracy']:.2f})")

# %%
if plt is not None and args.show:
    plt.show()
