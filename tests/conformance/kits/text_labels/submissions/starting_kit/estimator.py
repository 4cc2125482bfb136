from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def get_estimator():
    features = make_column_transformer(
        (OneHotEncoder(handle_unknown='ignore'), ['colour']),
        (StandardScaler(), ['x1', 'x2']))
    return make_pipeline(features, LogisticRegression(max_iter=1000))
