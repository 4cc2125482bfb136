import os

import numpy as np
import pandas as pd
import rampwf as rw

problem_title = 'Daily load, time-ordered folds'
_target_column_name = 'load'
Predictions = rw.prediction_types.make_regression()
workflow = rw.workflows.Estimator()
score_types = [rw.score_types.RMSE(name='rmse', precision=4)]


def get_cv(X, y):
    # Expanding window: train on the first k blocks, validate on the next.
    order = np.argsort(pd.to_datetime(X['day']).to_numpy(), kind='stable')
    blocks = np.array_split(order, 5)
    for k in range(2, 5):
        yield np.concatenate(blocks[:k]), blocks[k]


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=[_target_column_name]), data[_target_column_name].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
