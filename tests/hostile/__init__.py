"""The hostile suite: the adapter as an attacker with network access to its port, and a
faulty Prometheus, would treat it. Every check here can fail: a 5xx on bad input, a traceback,
a connection that is not closed, memory that is not returned, a stalled event loop."""
