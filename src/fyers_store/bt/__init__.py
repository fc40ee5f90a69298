"""Backtrader translators: ``FyersData`` and ``FyersBroker`` turn engine events into Backtrader lines, orders and notifications."""
