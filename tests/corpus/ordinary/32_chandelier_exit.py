def atr(df, n=22):
    high, low, close = df['High'], df['Low'], df['Close']
    tr = np.maximum(high - low, np.maximum((high - close.shift()).abs(), (low - close.shift()).abs()))
    return tr.rolling(n).mean()


def generate_features(df):
    a = atr(df)
    df['chandelier_long'] = df['High'].rolling(22).max() - 3.0 * a
    df['entry_level'] = df['High'].rolling(50).max().shift(1)
    return df


def strategy_logic(row):
    c = row['Close']
    entry_level = row['entry_level']
    stop = row['chandelier_long']
    if pd.isna(entry_level) or pd.isna(stop):
        return 0
    if c > entry_level:
        return 1
    return -1 if c < stop else 0
