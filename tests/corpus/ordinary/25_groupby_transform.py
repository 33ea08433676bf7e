def generate_features(df):
    df['ret'] = df['Close'].pct_change()
    df['ym'] = df.index.year * 100 + df.index.month
    df['month_to_date'] = df.groupby('ym')['ret'].cumsum()
    df['month_avg_vol'] = df.groupby('ym')['Volume'].transform('mean')
    return df


def strategy_logic(row):
    if pd.isna(row['month_to_date']):
        return 0
    if row['month_to_date'] > 0.02 and row['Volume'] > row['month_avg_vol']:
        return 1
    if row['month_to_date'] < -0.02:
        return -1
    return 0
