# The forecast task's starting forecaster (iteration 0 of `python harness.py --task forecast`): the
# climatology, one third each for down, flat and up at every horizon. Its RPS skill is 0 on train by
# construction; every later forecaster is measured against it. Check it with
#     python harness.py check --task forecast examples/forecast_climatology.py


def generate_features(df):
    return df


def forecast(row):
    return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}
