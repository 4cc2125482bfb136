"""Make this kit's small data: monthly temperature maps on a 6 x 12 grid,
40 years for training and 20 for the test, written as netCDF 3 files with
CF time units (scipy writes them; xarray reads them in the kit)."""
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import netcdf_file

rng = np.random.RandomState(1997)
LAT = np.arange(-25.0, 26.0, 10.0)
LON = np.arange(160.0, 280.0, 10.0)
EPOCH = pd.Timestamp('1900-01-01')


def write_maps(path, start, n_months):
    time = pd.date_range(start, periods=n_months, freq='MS')
    season = 26 + 2 * np.sin(2 * np.pi * np.arange(n_months) / 12)
    # A slow oscillation with a period of about four years, plus noise.
    phase = np.cumsum(rng.normal(2 * np.pi / 48, 0.05, n_months))
    oscillation = 1.5 * np.sin(phase)
    weight = np.exp(-(LAT[:, None] / 15) ** 2) * np.exp(-((LON[None, :] - 215) / 40) ** 2)
    tas = (season[:, None, None] + oscillation[:, None, None] * weight[None]
           + rng.normal(0, 0.3, (n_months, len(LAT), len(LON))))
    with netcdf_file(path, 'w') as f:
        f.createDimension('time', n_months)
        f.createDimension('lat', len(LAT))
        f.createDimension('lon', len(LON))
        days = f.createVariable('time', 'f8', ('time',))
        days[:] = (time - EPOCH).days.to_numpy(dtype='float64')
        days.units = 'days since 1900-01-01'
        days.calendar = 'standard'
        for name, values in (('lat', LAT), ('lon', LON)):
            variable = f.createVariable(name, 'f8', (name,))
            variable[:] = values
        variable = f.createVariable('tas', 'f8', ('time', 'lat', 'lon'))
        variable[:] = tas
        variable.units = 'degC'


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    write_maps(kit / 'data' / 'train.nc', '1950-01-01', 480)
    write_maps(kit / 'data' / 'test.nc', '1990-01-01', 240)
