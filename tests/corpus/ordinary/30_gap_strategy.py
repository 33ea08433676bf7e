def generate_features(df):
    df['gap'] = df['Open'] / df['Close'].shift(1) - 1
    df['gap_z'] = (df['gap'] - df['gap'].rolling(60).mean()) / df['gap'].rolling(60).std()
    df['intraday'] = df['Close'] / df['Open'] - 1
    return df


def strategy_logic(row):
    gz = row.get('gap_z')
    if gz is None or not np.isfinite(gz):
        return 0
    if gz < -1.5 and row['intraday'] > 0:
        return 1
    if gz > 1.5:
        return -1
    return 0
