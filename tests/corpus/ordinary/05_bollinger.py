WINDOW = 20
WIDTH = 2.0


def generate_features(df):
    mid = df['Close'].rolling(WINDOW).mean()
    sd = df['Close'].rolling(WINDOW).std()
    df['bb_mid'] = mid
    df['bb_upper'] = mid + WIDTH * sd
    df['bb_lower'] = mid - WIDTH * sd
    df['pct_b'] = (df['Close'] - df['bb_lower']) / (df['bb_upper'] - df['bb_lower'])
    return df


def strategy_logic(row):
    pb = row['pct_b']
    if pd.isna(pb):
        return 0
    if pb < 0.0:
        return 1
    if row['Close'] > row['bb_mid']:
        return -1
    return 0
