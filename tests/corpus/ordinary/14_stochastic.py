def generate_features(df, k_period=14, d_period=3):
    low_min = df['Low'].rolling(k_period).min()
    high_max = df['High'].rolling(k_period).max()
    df['%K'] = 100 * (df['Close'] - low_min) / (high_max - low_min)
    df['%D'] = df['%K'].rolling(d_period).mean()
    return df


def strategy_logic(row):
    k, d = row['%K'], row['%D']
    if pd.isna(k) or pd.isna(d):
        return 0
    if k < 20 and k > d:
        return 1
    if k > 80 and k < d:
        return -1
    return 0
