WINDOWS = (10, 20, 40, 80)


def generate_features(df):
    means = {w: df['Close'].rolling(w).mean() for w in WINDOWS}
    ordered = sorted(WINDOWS)
    aligned = [(means[a] > means[b]) for a, b in zip(ordered[:-1], ordered[1:])]
    df['aligned_up'] = sum(x.astype(int) for x in aligned)
    df['aligned_dn'] = sum((~x).astype(int) for x in aligned)
    df['ready'] = means[max(WINDOWS)].notna()
    return df


def strategy_logic(row):
    if not row['ready']:
        return 0
    n = len(WINDOWS) - 1
    if row['aligned_up'] == n:
        return 1
    if row['aligned_dn'] == n:
        return -1
    return 0
