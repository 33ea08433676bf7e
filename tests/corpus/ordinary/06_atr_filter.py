def true_range(df):
    prev_close = df['Close'].shift(1)
    ranges = pd.concat([
        df['High'] - df['Low'],
        (df['High'] - prev_close).abs(),
        (df['Low'] - prev_close).abs(),
    ], axis=1)
    return ranges.max(axis=1)


def generate_features(df):
    df['atr'] = true_range(df).rolling(14).mean()
    df['atr_pct'] = df['atr'] / df['Close']
    df['atr_pct_median'] = df['atr_pct'].rolling(100, min_periods=30).median()
    df['mom'] = df['Close'].pct_change(20)
    return df


def strategy_logic(row):
    calm = row['atr_pct'] < row['atr_pct_median']
    if pd.isna(row['atr_pct_median']) or pd.isna(row['mom']):
        return 0
    if calm and row['mom'] > 0:
        return 1
    if row['mom'] < 0:
        return -1
    return 0
