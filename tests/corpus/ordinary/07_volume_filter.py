def generate_features(df):
    df['vol_ma'] = df['Volume'].rolling(20).mean()
    df['vol_ratio'] = df['Volume'] / df['vol_ma']
    df['ret'] = df['Close'].pct_change()
    df['up_day'] = (df['ret'] > 0).astype(int)
    return df


def strategy_logic(row):
    if pd.isna(row['vol_ratio']):
        return 0
    if row['vol_ratio'] > 1.5 and row['up_day'] == 1:
        return 1
    if row['vol_ratio'] > 1.5 and row['up_day'] == 0:
        return -1
    return 0
