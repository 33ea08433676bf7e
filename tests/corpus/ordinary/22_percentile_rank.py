def generate_features(df):
    df['ret20'] = df['Close'].pct_change(20)
    df['rank'] = df['ret20'].rolling(120, min_periods=40).rank(pct=True)
    return df


def strategy_logic(row):
    rank = row['rank']
    if pd.isna(rank):
        return 0
    if rank > 0.8:
        return 1
    if rank < 0.3:
        return -1
    return 0
