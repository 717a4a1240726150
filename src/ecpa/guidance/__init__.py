"""Production guidance: demand forecasts from the sales history and a production plan for
a cooperative's members (issue 8)."""
