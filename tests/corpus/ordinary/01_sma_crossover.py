def generate_features(df):
    df['sma_fast'] = df['Close'].rolling(10).mean()
    df['sma_slow'] = df['Close'].rolling(40).mean()
    return df


def strategy_logic(row):
    if pd.isna(row['sma_slow']):
        return 0
    if row['sma_fast'] > row['sma_slow']:
        return 1
    if row['sma_fast'] < row['sma_slow']:
        return -1
    return 0
