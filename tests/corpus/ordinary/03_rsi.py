def compute_rsi(close, period=14):
    delta = close.diff()
    gain = delta.clip(lower=0).rolling(period).mean()
    loss = (-delta.clip(upper=0)).rolling(period).mean()
    rs = gain / loss.replace(0, np.nan)
    return 100 - 100 / (1 + rs)


def generate_features(df):
    df['rsi'] = compute_rsi(df['Close'])
    return df


def strategy_logic(row):
    rsi = row.get('rsi')
    if rsi is None or pd.isna(rsi):
        return 0
    if rsi < 30:
        return 1
    elif rsi > 70:
        return -1
    return 0
