"""HTTP routers, one per resource. Thin: validate, delegate to a service, return."""
