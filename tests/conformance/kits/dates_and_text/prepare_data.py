"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1001)
def table(n):
    dates = pd.Timestamp('2024-01-01') + pd.to_timedelta(rng.randint(0, 365, n), unit='D')
    city = rng.choice(['paris', 'lyon', 'lille', 'nice'], n)
    sales = (10 + 3 * (dates.dayofweek >= 5) + np.sin(dates.dayofyear / 58.0)
             + (city == 'paris') * 4 + rng.normal(0, 0.5, n))
    return pd.DataFrame({'date': dates.strftime('%Y-%m-%d'), 'city': city,
                         'temperature': rng.normal(15, 5, n).round(1), 'sales': sales})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
