def generate_features(df):
    period = 14
    hh = df['High'].rolling(period).max()
    ll = df['Low'].rolling(period).min()
    df['will_r'] = -100 * (hh - df['Close']) / (hh - ll)
    df['sma200'] = df['Close'].rolling(200, min_periods=50).mean()
    return df


def strategy_logic(row):
    wr, sma = row['will_r'], row['sma200']
    if pd.isna(wr) or pd.isna(sma):
        return 0
    if wr < -80 and row['Close'] > sma:
        return 1
    if wr > -20:
        return -1
    return 0
