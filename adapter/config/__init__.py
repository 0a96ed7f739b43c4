"""Config file schema, strict loading and validation errors."""
