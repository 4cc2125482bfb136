import os

import numpy as np
import rampwf as rw
import xarray as xr

# A time-series kit shaped like RAMP's El Nino challenge: the input is an
# xarray Dataset of monthly temperature maps with a burn-in period that has
# no target, the submission is a time-series feature extractor (checked for
# looking into the future) followed by a regressor, and the folds are
# time-ordered blocks.
problem_title = 'El Nino forecast (time series)'
_n_burn_in = 120
_n_lookahead = 6
_filename_train = 'train.nc'
_filename_test = 'test.nc'
Predictions = rw.prediction_types.make_regression()
workflow = rw.workflows.ElNino(check_sizes=[100], check_indexs=[13])

score_types = [
    rw.score_types.RMSE(name='rmse', precision=3),
]

cv = rw.cvs.TimeSeries(n_cv=3, cv_block_size=0.5, period=12, unit='month', unit_2='year')
get_cv = cv.get_cv


def _target(X_ds):
    """The mean temperature of the Nino 3.4 box, _n_lookahead months ahead."""
    box = X_ds['tas'].sel(lat=slice(-5, 5), lon=slice(190, 240))
    index = box.mean(dim=('lat', 'lon')).values
    return np.concatenate([index[_n_lookahead:], np.full(_n_lookahead, np.nan)])


def _read_data(path, f_name):
    X_ds = xr.open_dataset(os.path.join(path, 'data', f_name), engine='scipy').load()
    y_array = _target(X_ds)[_n_burn_in:-_n_lookahead]
    X_ds = X_ds.isel(time=slice(None, -_n_lookahead))
    X_ds.attrs['n_burn_in'] = _n_burn_in
    return X_ds, y_array


def get_train_data(path='.'):
    return _read_data(path, _filename_train)


def get_test_data(path='.'):
    return _read_data(path, _filename_test)
