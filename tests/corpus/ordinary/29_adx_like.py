def smooth(x, n=14):
    return x.ewm(alpha=1.0 / n, adjust=False).mean()


def generate_features(df):
    up = df['High'].diff()
    down = -df['Low'].diff()
    plus_dm = pd.Series(np.where((up > down) & (up > 0), up, 0.0), index=df.index)
    minus_dm = pd.Series(np.where((down > up) & (down > 0), down, 0.0), index=df.index)
    tr = pd.concat([df['High'] - df['Low'], (df['High'] - df['Close'].shift(1)).abs(),
                    (df['Low'] - df['Close'].shift(1)).abs()], axis=1).max(axis=1)
    atr = smooth(tr)
    df['plus_di'] = 100 * smooth(plus_dm) / atr
    df['minus_di'] = 100 * smooth(minus_dm) / atr
    dx = 100 * (df['plus_di'] - df['minus_di']).abs() / (df['plus_di'] + df['minus_di'])
    df['adx'] = smooth(dx)
    return df


def strategy_logic(row):
    if row['adx'] > 20 and row['plus_di'] > row['minus_di']:
        return 1
    if row['minus_di'] > row['plus_di']:
        return -1
    return 0
