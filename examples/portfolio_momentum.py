# The portfolio task's starting allocation (iteration 0 of `python harness.py --task portfolio`):
# rank the instruments on 120-bar momentum each date, long the top third and short the bottom third
# (half the capital each side, market-neutral); with one instrument, long while its momentum is
# positive. Check it with
#     python harness.py check --task portfolio examples/portfolio_momentum.py


def generate_features(df):
    df["mom"] = df["Close"].pct_change(120)
    return df


def allocate(day):
    mom = day["mom"].dropna()
    if len(day) == 1:
        return {i: (1.0 if m > 0 else 0.0) for i, m in mom.items()}
    if len(mom) < 2:
        return {}
    ranked = mom.sort_values()
    k = max(1, len(ranked) // 3)
    weights = {i: 0.5 / k for i in ranked.index[-k:]}
    weights.update({i: -0.5 / k for i in ranked.index[:k]})
    return weights
