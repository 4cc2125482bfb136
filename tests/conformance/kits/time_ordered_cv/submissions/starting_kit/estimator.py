from sklearn.compose import make_column_transformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline


def get_estimator():
    features = make_column_transformer(('passthrough', ['lag1']))
    return make_pipeline(features, GradientBoostingRegressor(n_estimators=30, random_state=0))
