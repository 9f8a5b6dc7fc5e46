"""The REST API: routes, request/response shapes, identity and the error mapping."""
