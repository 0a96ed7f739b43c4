"""`prometheus-adapter explain-hpa`: the HPA controller's arithmetic, requests and reads,
the diagnosis and the report."""
