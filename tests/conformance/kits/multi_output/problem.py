import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import KFold

problem_title = 'Two targets at once'
_target_column_names = ['height', 'width']
Predictions = rw.prediction_types.make_regression(label_names=_target_column_names)
workflow = rw.workflows.Estimator()
score_types = [rw.score_types.RMSE(name='rmse', precision=4)]


def get_cv(X, y):
    return KFold(n_splits=3, shuffle=True, random_state=4).split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=_target_column_names), data[_target_column_names].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
