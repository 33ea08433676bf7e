"""Tasks: the protocol every task plugs into, and the plug-ins (trade, forecast)."""
