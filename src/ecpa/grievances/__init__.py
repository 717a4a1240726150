"""Grievances (issue 6): filing by anyone, routing to the responsible office with a
deadline, tracking to resolution by a public reference number."""
