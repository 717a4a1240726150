"""The marketplace: sellers, pavilions, products, orders that never oversell (issue 5)."""
