TARGET_VOL = 0.15


def realized_vol(close, window=20):
    """Annualised close-to-close volatility."""
    return np.log(close / close.shift(1)).rolling(window).std() * np.sqrt(252)


def generate_features(df):
    df['rv'] = realized_vol(df['Close'])
    df['trend'] = df['Close'].rolling(60).mean().pct_change(5)
    df['scale'] = (TARGET_VOL / df['rv']).clip(upper=2.0)
    return df


def strategy_logic(row):
    rv, trend, scale = row['rv'], row['trend'], row['scale']
    if pd.isna(rv) or pd.isna(trend):
        return 0
    if trend > 0 and scale >= 1.0:
        return 1
    if trend < 0 or scale < 0.5:
        return -1
    return 0
