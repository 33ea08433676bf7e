def generate_features(df):
    df['ret'] = df['Close'].pct_change()
    df['vol'] = df['ret'].rolling(20).std() * np.sqrt(252)
    df['sharpe_20'] = df['ret'].rolling(20).mean() / df['ret'].rolling(20).std()
    return df


def strategy_logic(row):
    try:
        s = float(row['sharpe_20'])
        v = float(row['vol'])
    except (KeyError, TypeError, ValueError):
        return 0
    if np.isnan(s) or np.isnan(v):
        return 0
    if s > 0.2 and v < 0.5:
        return 1
    elif s < -0.1:
        return -1
    else:
        return 0
