import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import KFold

# An older kit: the Regressor workflow (regressor.py defines a Regressor
# class with fit and predict), features read from an Excel-style CSV with a
# date column turned into numbers by the kit, not the submission.
problem_title = 'Bike rentals (regressor workflow)'
_target_column_name = 'rentals'
Predictions = rw.prediction_types.make_regression()
workflow = rw.workflows.Regressor()

score_types = [
    rw.score_types.RMSE(name='rmse', precision=3),
    rw.score_types.RelativeRMSE(name='rel_rmse', precision=4),
]


def get_cv(X, y):
    cv = KFold(n_splits=5, shuffle=True, random_state=8)
    return cv.split(X)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name), parse_dates=['day'])
    y_array = data[_target_column_name].values.astype(float)
    data['dayofyear'] = data['day'].dt.day_of_year
    data['weekday'] = data['day'].dt.day_of_week
    X_array = data.drop([_target_column_name, 'day'], axis=1).values.astype(float)
    return X_array, y_array


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
