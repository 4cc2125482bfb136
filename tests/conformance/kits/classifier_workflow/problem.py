import os

import pandas as pd
import rampwf as rw
from sklearn.model_selection import StratifiedShuffleSplit

# An older kit: the Classifier workflow (a submission's classifier.py defines
# a Classifier class with fit and predict_proba), numpy arrays as inputs, the
# labels text read from a CSV with a semicolon separator and a comma decimal.
problem_title = 'Wine quality (classifier workflow)'
_target_column_name = 'quality'
_prediction_label_names = ['bad', 'good', 'great']
Predictions = rw.prediction_types.make_multiclass(
    label_names=_prediction_label_names)
workflow = rw.workflows.Classifier()

score_types = [
    rw.score_types.Accuracy(name='acc'),
    rw.score_types.NegativeLogLikelihood(name='nll'),
    rw.score_types.F1Above(name='f1_70', threshold=0.7),
]


def get_cv(X, y):
    cv = StratifiedShuffleSplit(n_splits=4, test_size=0.25, random_state=57)
    return cv.split(X, y)


def _read_data(path, f_name):
    data = pd.read_csv(os.path.join(path, 'data', f_name), sep=';', decimal=',')
    y_array = data[_target_column_name].values
    X_array = data.drop([_target_column_name], axis=1).values
    return X_array, y_array


def get_train_data(path='.'):
    f_name = 'train.csv'
    return _read_data(path, f_name)


def get_test_data(path='.'):
    f_name = 'test.csv'
    return _read_data(path, f_name)
