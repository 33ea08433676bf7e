def generate_features(df):
    df['upper'] = df['High'].rolling(55).max().shift(1)
    df['lower'] = df['Low'].rolling(20).min().shift(1)
    return df


def strategy_logic(row):
    upper = row.get('upper', np.nan)
    lower = row.get('lower', np.nan)
    if np.isnan(upper) or np.isnan(lower):
        return 0
    if row['Close'] > upper:
        return 1
    if row['Close'] < lower:
        return -1
    return 0
