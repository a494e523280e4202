// Swagger UI for /openapi.json, started from a file rather than an inline script (the
// broker's Content-Security-Policy allows scripts from its own origin only).
// validatorUrl null: Swagger UI would otherwise send the schema to a public validator.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
