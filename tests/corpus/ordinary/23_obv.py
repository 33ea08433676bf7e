def generate_features(df):
    direction = np.sign(df['Close'].diff()).fillna(0)
    df['obv'] = (direction * df['Volume']).cumsum()
    df['obv_ema'] = df['obv'].ewm(span=20, adjust=False).mean()
    df['price_ema'] = df['Close'].ewm(span=20, adjust=False).mean()
    return df


def strategy_logic(row):
    obv_up = row['obv'] > row['obv_ema']
    price_up = row['Close'] > row['price_ema']
    if obv_up and price_up:
        return 1
    if not obv_up and not price_up:
        return -1
    return 0
