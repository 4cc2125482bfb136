import os

import numpy as np
import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedShuffleSplit

# An image kit as RAMP's image challenges are written: ramp-workflow's own
# SimplifiedImageClassifier reads PNG files from data/imgs with scikit-image
# (in the kit's environment), the submission gets an ImageLoader.
problem_title = 'Rings, crosses or blobs (PNG images)'
_prediction_label_names = ['blob', 'cross', 'ring']
Predictions = rw.prediction_types.make_multiclass(label_names=_prediction_label_names)
workflow = rw.workflows.SimplifiedImageClassifier(n_classes=len(_prediction_label_names))
score_types = [
    rw.score_types.Accuracy(name='acc', precision=4),
    rw.score_types.NegativeLogLikelihood(name='nll', precision=4),
]


def get_cv(folder_X, y):
    cv = StratifiedShuffleSplit(n_splits=3, test_size=0.25, random_state=12)
    return cv.split(np.zeros(len(y)), y)


def _read_data(path, f_name):
    df = pd.read_csv(os.path.join(path, 'data', f_name))
    folder = os.path.join(path, 'data', 'imgs')
    return (folder, df['id'].values), df['class'].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
