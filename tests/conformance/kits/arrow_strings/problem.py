import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedKFold

problem_title = 'Arrow-backed text columns'
_target_column_name = 'answer'
Predictions = rw.prediction_types.make_multiclass(label_names=['no', 'yes'])
workflow = rw.workflows.Estimator()
score_types = [rw.score_types.Accuracy(name='acc', precision=4),
               rw.score_types.NegativeLogLikelihood(name='nll', precision=4)]


def get_cv(X, y):
    return StratifiedKFold(n_splits=3, shuffle=True, random_state=5).split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    arrow_text = pd.StringDtype('pyarrow')
    X = data.drop(columns=[_target_column_name]).astype(
        {'shape': arrow_text, 'size': arrow_text})
    return X, data[_target_column_name].to_numpy()


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
