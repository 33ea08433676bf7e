def generate_features(df):
    ema12 = df['Close'].ewm(span=12, adjust=False).mean()
    ema26 = df['Close'].ewm(span=26, adjust=False).mean()
    df['macd'] = ema12 - ema26
    df['signal'] = df['macd'].ewm(span=9, adjust=False).mean()
    df['hist'] = df['macd'] - df['signal']
    df['hist_prev'] = df['hist'].shift(1)
    return df


def strategy_logic(row):
    h, hp = row['hist'], row['hist_prev']
    if pd.isna(hp):
        return 0
    if hp <= 0 < h:
        return 1
    if hp >= 0 > h:
        return -1
    return 0
