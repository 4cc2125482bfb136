import os

import numpy as np
import pandas as pd
import rampwf as rw
from rampwf.utils.importing import import_module_from_source
from sklearn.model_selection import GroupShuffleSplit

problem_title = 'Tracks in events: which hits belong together, and is the event signal'
_event_column = 'event_id'
_cluster_column = 'track_id'
_label_column = 'signal'
_prediction_label_names = [0, 1]

Predictions = rw.prediction_types.make_combined([
    rw.prediction_types.make_clustering(),
    rw.prediction_types.make_multiclass(label_names=_prediction_label_names),
])
score_types = [
    rw.score_types.Combined(
        name='combined', score_types=[
            rw.score_types.ClusteringEfficiency(name='efficiency'),
            rw.score_types.Accuracy(name='acc')],
        weights=[0.6, 0.4], precision=4),
    rw.score_types.MakeCombined(
        score_type=rw.score_types.ClusteringEfficiency(name='efficiency', precision=4),
        index=0),
    rw.score_types.MakeCombined(
        score_type=rw.score_types.Accuracy(name='acc', precision=4), index=1),
]


class ClustererClassifier:
    """The hits of each event clustered into tracks by the submission's
    clusterer.py, and every hit given its event's class probabilities by its
    classifier.py (a supervised clustering problem with a side task)."""

    def __init__(self, workflow_element_names=('clusterer', 'classifier')):
        self.element_names = list(workflow_element_names)

    def _load(self, module_path, name):
        return import_module_from_source(
            os.path.join(module_path, name + '.py'), name, sanitize=True)

    def train_submission(self, module_path, X, y, train_is=None):
        if train_is is None:
            train_is = slice(None, None, None)
        clusterer = self._load(module_path, self.element_names[0]).Clusterer()
        clusterer.fit(X[train_is], y[train_is, :2])
        classifier = self._load(module_path, self.element_names[1]).Classifier()
        classifier.fit(X[train_is], y[train_is, 2].astype(int))
        return clusterer, classifier

    def test_submission(self, trained_model, X):
        clusterer, classifier = trained_model
        cluster_ids = np.empty(len(X), dtype=int)
        for event_id in np.unique(X[:, 0]):
            in_event = X[:, 0] == event_id
            cluster_ids[in_event] = clusterer.predict_single_event(X[in_event][:, 1:])
        proba = classifier.predict_proba(X)
        return np.column_stack([X[:, 0], cluster_ids, proba])


workflow = ClustererClassifier()


def get_cv(X, y):
    # Whole events go to one side of each split.
    cv = GroupShuffleSplit(n_splits=3, test_size=0.3, random_state=11)
    return cv.split(X, y, groups=X[:, 0])


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    X = data[[_event_column, 'x', 'y']].to_numpy()
    y = data[[_event_column, _cluster_column, _label_column]].to_numpy()
    return X, y


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
