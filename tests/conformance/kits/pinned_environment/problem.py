import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedShuffleSplit

problem_title = 'A kit pinning pandas 2 and scikit-learn 1.5'
_target_column_name = 'outcome'
Predictions = rw.prediction_types.make_multiclass(label_names=['no', 'yes'])
workflow = rw.workflows.Estimator()
score_types = [
    rw.score_types.ROCAUC(name='auc', precision=4),
    rw.score_types.Accuracy(name='acc', precision=4),
    rw.score_types.NegativeLogLikelihood(name='nll', precision=4),
]


def get_cv(X, y):
    return StratifiedShuffleSplit(n_splits=3, test_size=0.25, random_state=5).split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name))
    return data.drop(columns=[_target_column_name]), data[_target_column_name].values


def get_train_data(path='.'):
    return _read_data(path, 'train.csv')


def get_test_data(path='.'):
    return _read_data(path, 'test.csv')
