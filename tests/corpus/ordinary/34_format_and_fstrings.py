def column_name(prefix, n):
    return '{}_{}'.format(prefix, n)


def generate_features(df):
    for n in range(2, 6):
        df[column_name('roc', n)] = df['Close'].pct_change(n)
        df[f"roc_{n}_pos"] = (df[column_name('roc', n)] > 0).astype(float)
    positives = [f"roc_{n}_pos" for n in range(2, 6)]
    df['breadth'] = df[positives].mean(axis=1)
    return df


def strategy_logic(row):
    b = row['breadth']
    if b >= 0.75:
        return 1
    if b <= 0.25:
        return -1
    return 0
