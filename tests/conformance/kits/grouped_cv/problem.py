import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import GroupKFold

problem_title = 'Yields per site, grouped folds'
_target_column_name = 'yield'
Predictions = rw.prediction_types.make_regression()
workflow = rw.workflows.FeatureExtractorRegressor()
score_types = [rw.score_types.RMSE(name='rmse', precision=4),
               rw.score_types.NormalizedRMSE(name='nrmse', precision=4)]


def get_cv(X, y):
    return GroupKFold(n_splits=3).split(X, y, groups=X['site'])


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=[_target_column_name]), data[_target_column_name].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
