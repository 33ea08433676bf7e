def up_streak(values):
    out = np.zeros(len(values))
    for i in range(1, len(values)):
        j = i
        count = 0
        while j > 0 and values[j] > values[j - 1]:
            count += 1
            j -= 1
        out[i] = count
    return out


def generate_features(df):
    df['streak'] = up_streak(df['Close'].to_numpy())
    return df


def strategy_logic(row):
    if row['streak'] >= 3:
        return 1
    if row['streak'] == 0:
        return -1
    return 0
