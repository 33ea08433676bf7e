def zscore(series, window):
    mean = series.rolling(window).mean()
    std = series.rolling(window).std(ddof=0)
    return (series - mean) / std.replace(0.0, np.nan)


def generate_features(df):
    df['z'] = zscore(df['Close'], 30)
    df['z_prev'] = df['z'].shift(1)
    return df


def strategy_logic(row):
    z = row['z']
    if z != z:
        return 0
    if z < -2:
        return 1
    if z > 0:
        return -1
    return 0
