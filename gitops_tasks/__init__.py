"""gitops-tasks."""
