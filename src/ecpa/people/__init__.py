"""People and permissions: users, roles, region scopes, sign-in tokens and the audit log."""
