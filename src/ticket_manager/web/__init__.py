"""HTTP endpoints of the app (Graph change notifications; the ticket API joins later)."""
