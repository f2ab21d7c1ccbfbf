"""Stage 6, the summary: runs collected, the table per configuration, the statistics, the report, plots and the simulations behind them."""
