LOOKBACKS = [5, 10, 20, 60]


def momentum(close, n):
    return close / close.shift(n) - 1.0


def generate_features(df):
    for n in LOOKBACKS:
        df[f'mom_{n}'] = momentum(df['Close'], n)
    cols = [f'mom_{n}' for n in LOOKBACKS]
    df['mom_score'] = (df[cols] > 0).sum(axis=1)
    return df


def strategy_logic(row):
    score = row['mom_score']
    if score >= 3:
        return 1
    if score <= 1:
        return -1
    return 0
