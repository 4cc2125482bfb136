import os

import numpy as np
import pandas as pd
import rampwf as rw
from rampwf.utils.importing import import_module_from_source
from sklearn.model_selection import StratifiedShuffleSplit

problem_title = 'Which way the stripes run, from small grey images'
_prediction_label_names = ['diagonal', 'horizontal', 'vertical']
Predictions = rw.prediction_types.make_multiclass(label_names=_prediction_label_names)
score_types = [
    rw.score_types.Accuracy(name='acc', precision=4),
    rw.score_types.NegativeLogLikelihood(name='nll', precision=4),
]


class ImageLoader:
    """The images of ``ids`` read one at a time from ``folder`` (one .npy each)."""

    def __init__(self, folder, ids):
        self.folder = folder
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def load(self, index):
        return np.load(os.path.join(self.folder, f'{self.ids[index]}.npy'))


class SimpleImageClassifier:
    """Like rampwf's SimplifiedImageClassifier, with images saved as .npy
    (no scikit-image here): the submission's ImageClassifier gets an
    ImageLoader, and reads the images it wants."""

    def __init__(self, workflow_element_names=('image_classifier',)):
        self.element_names = list(workflow_element_names)

    def train_submission(self, module_path, folder_X_array, y_array, train_is=None):
        if train_is is None:
            train_is = slice(None, None, None)
        folder, X_array = folder_X_array
        image_classifier = import_module_from_source(
            os.path.join(module_path, self.element_names[0] + '.py'),
            self.element_names[0], sanitize=True)
        clf = image_classifier.ImageClassifier()
        clf.fit(ImageLoader(folder, X_array[train_is]), y_array[train_is])
        return clf

    def test_submission(self, trained_model, folder_X_array):
        folder, X_array = folder_X_array
        return trained_model.predict_proba(ImageLoader(folder, X_array))


workflow = SimpleImageClassifier()


def get_cv(folder_X, y):
    cv = StratifiedShuffleSplit(n_splits=3, test_size=0.3, random_state=5)
    return cv.split(np.zeros(len(y)), y)


def _read_data(path, f_name):
    df = pd.read_csv(os.path.join(path, 'data', f_name))
    X = df['id'].values
    y = df['class'].values
    folder = os.path.join(path, 'data', 'imgs')
    return (folder, X), y


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
