"""The email-to-ticket pipeline: ledger, rules, ticket building, processing and sync."""
