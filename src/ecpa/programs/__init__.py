"""Programs that lift households out of poverty: contract farming with buy-back,
no-collateral agricultural loans, cooperatives, training and employment."""
