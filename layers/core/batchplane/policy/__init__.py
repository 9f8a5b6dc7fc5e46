"""Pure decisions: admission, routing, retry and fallback, configured by the policy document."""
