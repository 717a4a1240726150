"""The registry of poor households ("filing archives and cards", 建档立卡)."""
