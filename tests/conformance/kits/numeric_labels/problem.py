import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import ShuffleSplit

problem_title = 'Integer labels'
_target_column_name = 'label'
Predictions = rw.prediction_types.make_multiclass(label_names=[0, 1])
workflow = rw.workflows.Estimator()
score_types = [
    rw.score_types.ROCAUC(name='auc', precision=4),
    rw.score_types.Accuracy(name='acc', precision=4),
    rw.score_types.BalancedAccuracy(name='bacc', precision=4),
]


def get_cv(X, y):
    return ShuffleSplit(n_splits=3, test_size=0.3, random_state=11).split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=[_target_column_name]), data[_target_column_name].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
