"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1004)
STATIONS = 2500
station_level = rng.normal(100, 20, STATIONS)
def table(n):
    station = rng.randint(0, STATIONS, n)
    return pd.DataFrame({'station': station, 'rooms': rng.randint(1, 6, n),
                         'price': station_level[station] + 10 * rng.randint(1, 6, n)
                         + rng.normal(0, 3, n)})


def extra(kit):
    # About 1 MB of readings per station, submitted as external_data.csv.
    rows = 64000
    station = rng.randint(0, STATIONS, rows)
    readings = pd.DataFrame({'station': station,
                             'level': (station_level[station] + rng.normal(0, 5, rows)).round(6)})
    readings.to_csv(kit / 'submissions' / 'starting_kit' / 'external_data.csv', index=False)


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
    extra(kit)
