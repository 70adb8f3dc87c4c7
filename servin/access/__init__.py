"""Who may call: TLS contexts (and, next, API keys, tokens, scopes, rate limits, the audit log)."""
