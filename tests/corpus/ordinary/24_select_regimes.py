def generate_features(df):
    ret = df['Close'].pct_change()
    vol = ret.rolling(20).std()
    vol_q = vol.rolling(250, min_periods=50).quantile(0.7)
    trend = df['Close'] > df['Close'].rolling(100, min_periods=20).mean()
    conditions = [trend & (vol < vol_q), ~trend & (vol >= vol_q)]
    df['regime'] = np.select(conditions, [1, -1], default=0)
    return df


def strategy_logic(row):
    regime = row['regime']
    return 1 if regime == 1 else -1 if regime == -1 else 0
