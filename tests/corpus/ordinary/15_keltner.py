def generate_features(df):
    ema = df['Close'].ewm(span=20, adjust=False).mean()
    tr = pd.concat([df['High'] - df['Low'], (df['High'] - df['Close'].shift()).abs(),
                    (df['Low'] - df['Close'].shift()).abs()], axis=1).max(axis=1)
    atr = tr.ewm(span=20, adjust=False).mean()
    df = df.assign(kc_mid=ema, kc_up=ema + 2 * atr, kc_dn=ema - 2 * atr)
    return df


def strategy_logic(row):
    if row.Close > row.kc_up:
        return 1
    if row.Close < row.kc_mid:
        return -1
    return 0
