import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder


def _date_features(X):
    dates = pd.to_datetime(X['date'])
    return np.c_[dates.dt.dayofweek >= 5, np.sin(dates.dt.dayofyear / 58.0)]


def get_estimator():
    features = make_column_transformer(
        (FunctionTransformer(_date_features), ['date']),
        (OneHotEncoder(handle_unknown='ignore'), ['city']),
        ('passthrough', ['temperature']))
    return make_pipeline(features, Ridge(alpha=1.0))
