def generate_features(df):
    stats = df['Close'].pct_change().rolling(30).agg(['mean', 'std'])
    df['ret_mean'] = stats['mean']
    df['ret_std'] = stats['std']
    df['t_stat'] = df['ret_mean'] / (df['ret_std'] / np.sqrt(30))
    return df


def strategy_logic(row):
    t = row['t_stat']
    if pd.isna(t):
        return 0
    return 1 if t > 1.0 else (-1 if t < -0.5 else 0)
