"""The HTTP side: REST API with OpenAPI, the page for the day, /metrics, health."""
