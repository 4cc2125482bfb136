import os

import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer


def _with_station_level(X):
    readings = pd.read_csv(os.path.join(os.path.dirname(__file__), 'external_data.csv'))
    level = readings.groupby('station')['level'].mean()
    out = X[['rooms']].copy()
    out['level'] = X['station'].map(level).fillna(level.mean()).to_numpy()
    return out


def get_estimator():
    return make_pipeline(FunctionTransformer(_with_station_level), LinearRegression())
