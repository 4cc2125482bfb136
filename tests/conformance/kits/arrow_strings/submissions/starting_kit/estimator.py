from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder


def get_estimator():
    features = make_column_transformer(
        (OneHotEncoder(handle_unknown='ignore'), ['shape', 'size']),
        remainder='passthrough')
    return make_pipeline(features, LogisticRegression(max_iter=1000))
