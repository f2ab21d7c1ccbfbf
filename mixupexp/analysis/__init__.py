"""Floor 7, the analysis: runs collected, the table per configuration, the statistics (fixed and sequential), the
plots and the simulations behind them: numbers from runs, whatever sweep made them."""
