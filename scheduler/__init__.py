"""The producers: beat (the drift sweeps and the Application watch, on an elected leader)
and, later, the webhook receiver."""
