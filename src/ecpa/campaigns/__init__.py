"""Campaigns: consumption poverty alleviation days and crowdfunding pre-sales (issue 5)."""
