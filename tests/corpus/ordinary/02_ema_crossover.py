FAST_SPAN = 12
SLOW_SPAN = 26


def generate_features(df: pd.DataFrame) -> pd.DataFrame:
    """Exponential moving average crossover with a trend filter."""
    df["ema_fast"] = df["Close"].ewm(span=FAST_SPAN, adjust=False).mean()
    df["ema_slow"] = df["Close"].ewm(span=SLOW_SPAN, adjust=False).mean()
    df["trend"] = df["Close"].rolling(100, min_periods=20).mean()
    return df


def strategy_logic(row) -> int:
    fast, slow, trend = row["ema_fast"], row["ema_slow"], row["trend"]
    if pd.isna(trend):
        return 0
    return 1 if fast > slow and row["Close"] > trend else (-1 if fast < slow else 0)
