import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedShuffleSplit

problem_title = 'Feature extractor and classifier'
_target_column_name = 'kind'
Predictions = rw.prediction_types.make_multiclass(label_names=['a', 'b', 'c'])
workflow = rw.workflows.FeatureExtractorClassifier()
score_types = [rw.score_types.Accuracy(name='acc', precision=4),
               rw.score_types.F1Above(name='f1_70', threshold=0.7, precision=4),
               rw.score_types.MacroAveragedRecall(name='mar', precision=4)]


def get_cv(X, y):
    return StratifiedShuffleSplit(n_splits=3, test_size=0.3, random_state=3).split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=[_target_column_name]), data[_target_column_name].to_numpy()


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
