"""Make this kit's small data: 250 training and 100 test days."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(77)


def table(start, n):
    day = pd.date_range(start, periods=n, freq='D')
    temp = 12 + 10 * np.sin(2 * np.pi * (day.day_of_year - 100) / 365) + rng.normal(0, 2, n)
    rain = rng.exponential(2.0, n).round(1)
    weekend = (day.day_of_week >= 5).astype(int)
    rentals = (200 + 15 * temp - 20 * rain + 80 * weekend + rng.normal(0, 30, n)).round()
    return pd.DataFrame({'day': day.strftime('%Y-%m-%d'), 'temperature': temp.round(1),
                         'rain_mm': rain, 'rentals': rentals.astype(int)})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table('2021-01-01', 250).to_csv(kit / 'data' / 'train.csv', index=False)
    table('2021-09-08', 100).to_csv(kit / 'data' / 'test.csv', index=False)
