#!/usr/bin/env python3
"""Wall time of a cv run against recomputing the whole network for every image and epoch.

Usage: scripts/cv-timing.py RUN_DIR [REFERENCE_IMG_PER_S=4.8] [EPOCHS=40]

Reads RUN_DIR/cv.json. The recompute baseline is what issue 7 compares with: every training image
of every epoch through the whole network at the reference's training-step speed (PyTorch, VGG-16,
4.8 img/s on this machine kind). It is given for the epochs this run trained and, scaled, for
EPOCHS epochs (the feature cache is paid once; the trainable part scales with the epochs).
"""
import json
import sys


def main(run, reference=4.8, epochs=40):
    cv = json.load(open(f'{run}/cv.json'))
    folds = [f['summary'] for f in cv['folds']]
    images = sum(f['trainImgPerSec'] * f['trainSeconds'] for f in folds)
    epochs_run = [f['epochsRun'] for f in folds]
    cache = sum(f['featureCacheSeconds'] for f in folds)
    train = sum(f['trainSeconds'] for f in folds)
    wall = cv['wallSeconds']
    other = wall - cache - train  # validation and test predictions, checkpoints, guard, reports
    recompute = images / reference
    print(f'run: {run}')
    print(f'epochs run per fold: {epochs_run}; training images seen: {images:,.0f}')
    print(f'wall {wall / 60:.1f} min = feature cache {cache / 60:.1f} + trainable part {train / 60:.1f} + other {other / 60:.1f}')
    print(f'trainable part: {images / train:.1f} img/s')
    print(f'recompute at {reference} img/s: {recompute / 3600:.2f} h; this run: {wall / 3600:.2f} h = {wall / recompute:.3f} of it')
    scale = epochs / (sum(epochs_run) / len(epochs_run))
    wall_n = cache + (train + other) * scale
    print(f'scaled to {epochs} epochs: {wall_n / 3600:.2f} h against {recompute * scale / 3600:.2f} h = {wall_n / (recompute * scale):.3f}')


if __name__ == '__main__':
    args = sys.argv[1:]
    main(args[0], float(args[1]) if len(args) > 1 else 4.8, int(args[2]) if len(args) > 2 else 40)
