def sma(series, n):
    return series.rolling(n).mean()


def generate_features(df):
    c = df['Close']
    signals = {
        'trend': np.sign(sma(c, 20) - sma(c, 100)),
        'momentum': np.sign(c.pct_change(20)),
        'breakout': np.sign(c - c.rolling(50).max().shift(1)).clip(lower=0),
    }
    for name, values in signals.items():
        df[f'vote_{name}'] = values.fillna(0)
    df['votes'] = sum(df[f'vote_{name}'] for name in signals)
    return df


def strategy_logic(row):
    votes = row['votes']
    return 1 if votes >= 2 else (-1 if votes <= -1 else 0)
