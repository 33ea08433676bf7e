"""The trade task (``--task trade``, the default): ``generate_features`` + ``strategy_logic`` give long/flat
signals per instrument, scored as a backtest against buy and hold."""

from alphaloop.tasks.trade.task import TradeTask

__all__ = ["TradeTask"]
