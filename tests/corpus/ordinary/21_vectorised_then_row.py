def generate_features(df):
    fast = df['Close'].ewm(span=5).mean()
    slow = df['Close'].ewm(span=30).mean()
    cross_up = (fast > slow) & (fast.shift(1) <= slow.shift(1))
    cross_dn = (fast < slow) & (fast.shift(1) >= slow.shift(1))
    df['sig'] = 0
    df.loc[cross_up, 'sig'] = 1
    df.loc[cross_dn, 'sig'] = -1
    return df


def strategy_logic(row):
    return int(row['sig'])
