PARAMS = {'fast': 8, 'slow': 21, 'band': 0.01}


def generate_features(df):
    p = PARAMS
    df['fast'] = df['Close'].rolling(p['fast']).mean()
    df['slow'] = df['Close'].rolling(p['slow']).mean()
    df['spread'] = (df['fast'] - df['slow']) / df['slow']
    return df


def strategy_logic(row):
    spread = row.get('spread', 0.0)
    if spread is None or spread != spread:
        return 0
    band = PARAMS['band']
    if spread > band:
        return 1
    if spread < -band:
        return -1
    return 0
