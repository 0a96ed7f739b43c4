"""Go and Kubernetes syntax the rules use.

Go templates, Go regexps and quoting, label selectors, quantities and durations, each
ported from the Go source so that output matches the Go adapter byte for byte.
"""
