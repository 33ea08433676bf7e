def generate_features(df):
    c = df['Close'].to_numpy()
    hi = df['High'].rolling(20).max().shift(1).to_numpy()
    state = np.zeros(len(c))
    holding = False
    entry = 0.0
    for i, price in enumerate(c):
        if not holding and not np.isnan(hi[i]) and price > hi[i]:
            holding, entry = True, price
        elif holding and (price < entry * 0.95 or price > entry * 1.10):
            holding = False
        state[i] = 1.0 if holding else 0.0
    df['state'] = state
    df['state_prev'] = df['state'].shift(1).fillna(0)
    return df


def strategy_logic(row):
    if row['state'] == 1 and row['state_prev'] == 0:
        return 1
    if row['state'] == 0 and row['state_prev'] == 1:
        return -1
    return 0
