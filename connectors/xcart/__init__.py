"""X-Cart 5.x (REST API add-on) and 5.5+ (built-in API)."""
