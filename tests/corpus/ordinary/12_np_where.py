def generate_features(df):
    sma = df['Close'].rolling(50).mean()
    df['regime'] = np.where(df['Close'] > sma, 1, np.where(df['Close'] < sma, -1, 0))
    df['regime'] = df['regime'].where(sma.notna(), 0)
    df['regime_change'] = df['regime'].diff().fillna(0)
    return df


def strategy_logic(row):
    return int(row['regime'])
