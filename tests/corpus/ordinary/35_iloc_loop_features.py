def generate_features(df):
    n = len(df)
    highs = df['High'].values
    lows = df['Low'].values
    pivots = [0.0] * n
    last_pivot = np.nan
    for i in range(2, n):
        if highs[i - 1] > highs[i - 2] and highs[i - 1] > highs[i]:
            last_pivot = highs[i - 1]
        pivots[i] = last_pivot
    df['pivot_high'] = pivots
    df['range_low'] = pd.Series(lows, index=df.index).rolling(10).min()
    return df


def strategy_logic(row):
    ph = row['pivot_high']
    if not isinstance(ph, float) or np.isnan(ph) or ph == 0.0:
        return 0
    if row['Close'] > ph:
        return 1
    if row['Close'] < row['range_low']:
        return -1
    return 0
