def generate_features(df):
    r = df['Close'].pct_change(126)
    df['abs_mom'] = r
    df['rel_mom'] = r - r.rolling(252, min_periods=60).mean()
    df = df.ffill()
    return df


def strategy_logic(row):
    abs_mom = row['abs_mom']
    rel_mom = row['rel_mom']
    if any(pd.isna(v) for v in (abs_mom, rel_mom)):
        return 0
    return 1 if abs_mom > 0 and rel_mom > 0 else -1
