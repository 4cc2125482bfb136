from sklearn.ensemble import RandomForestRegressor


def get_estimator():
    return RandomForestRegressor(
        n_estimators=50, min_samples_leaf=5, random_state=42)
