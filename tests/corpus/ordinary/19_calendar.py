def generate_features(df):
    df['dow'] = df.index.dayofweek
    df['month'] = df.index.month
    df['ret5'] = df['Close'].pct_change(5)
    return df


def strategy_logic(row):
    if row['month'] in (11, 12, 1) and row['dow'] < 4:
        return 1
    if row['month'] in (6, 7, 8, 9):
        return -1
    return 0
