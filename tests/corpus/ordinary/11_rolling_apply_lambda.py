def generate_features(df):
    closes = df['Close']
    df['slope'] = closes.rolling(20).apply(lambda x: np.polyfit(np.arange(len(x)), x, 1)[0], raw=True)
    df['up_frac'] = closes.diff().rolling(10).apply(lambda x: (x > 0).mean(), raw=True)
    return df


def strategy_logic(row):
    if pd.isna(row['slope']) or pd.isna(row['up_frac']):
        return 0
    if row['slope'] > 0 and row['up_frac'] >= 0.6:
        return 1
    if row['slope'] < 0:
        return -1
    return 0
