import os

import numpy as np
import pandas as pd
import rampwf as rw
from rampwf.score_types.detection import (
    OSPA,
    SCP,
    DetectionAveragePrecision,
    DetectionPrecision,
    DetectionRecall,
)
from sklearn.model_selection import ShuffleSplit

problem_title = 'Bright discs in small noisy images'
_image_shape = (24, 24)
Predictions = rw.prediction_types.make_detection()
workflow = rw.workflows.ObjectDetector()
score_types = [
    OSPA(name='ospa', precision=4),
    SCP(shape=_image_shape, name='scp', precision=4),
    DetectionAveragePrecision(name='ap', precision=4),
    DetectionPrecision(name='precision', iou_threshold=0.5, precision=4),
    DetectionRecall(name='recall', iou_threshold=0.5, precision=4),
]


def get_cv(X, y):
    return ShuffleSplit(n_splits=3, test_size=0.3, random_state=42).split(X)


def _read_data(path, prefix):
    X = np.load(os.path.join(path, 'data', prefix + '_images.npy'))
    labels = pd.read_csv(os.path.join(path, 'data', prefix + '_labels.csv'))
    y = np.empty(len(X), dtype=object)
    for i in range(len(X)):
        y[i] = []
    for i, row, col, radius in labels[['i', 'row_p', 'col_p', 'radius_p']].itertuples(
            index=False):
        y[i].append((row, col, radius))
    return X, y


def get_train_data(path='.'):
    return _read_data(path, 'train')


def get_test_data(path='.'):
    return _read_data(path, 'test')
